"""Cross-View Attention on the flow transformers (``hostkit/dit_views.py``, issue 83) on the tiny random Flux.1, SD3
and Qwen-Image models: GaussCtrl's rule carried to joint attention (every view's queries on its own text + image keys,
blended by self_weight with the mean of their attention on each reference view's whole sequence).

- self_weight 1 is the unpatched model, bit for bit; a set of identical views is the unpatched model too (attention
  to an identical row is the same attention); the patch changes a set of distinct views.
- one block's output against an explicit softmax per reference, in float64, with classifier-free guidance's two
  chunks (the references are the rows of the row's own chunk), and the extended keys' one softmax.
- it composes with the flow editors that act at the sampler: FlowEdit (its source and target prompts are chunks of
  their own, its n_avg noises blocks of V rows in each; the same prompt twice still gives the views back exactly)
  and RF-Inversion (a view set inverted in one run).
Its refusals are cases of the bad-input table (``tests/host/bad_inputs_flowviews.py``)."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import torch

from workshop.headless.calls import call

MEAN, EXTENDED = "mean of references (GaussCtrl)", "extended keys (one softmax)"
SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def views_latent(family: str, views: int = 4, seed: int = 0, size: int = 8) -> torch.Tensor:
    shape = (views, 16, 1, size, size) if family == "qwen-image" else (views, 16, size, size)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def cross_view(host, model, latent, self_weight=0.6, mode=MEAN, references=2, listed=""):
    return call(host, "InvertEditCrossViewAttention", model=model, latent={"samples": latent}, references=references,
                self_weight=self_weight, mode=mode, reference_views=listed)[0]


def partial_sample(host, model, clip, family, latent, steps=3):
    """Sampling from the latent itself (no noise, denoise 0.7), so that the views' content reaches every step;
    SD3 and Qwen-Image under classifier-free guidance (two chunks a call)."""
    cond = encode(host, clip, SOURCE)
    if family.startswith("flux"):
        guider = call(host, "BasicGuider", model=model, conditioning=cond)[0]
    else:
        guider = call(host, "CFGGuider", model=model, positive=cond, negative=encode(host, clip, ""), cfg=3.0)[0]
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=0.7)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


@pytest.mark.parametrize("family", ["flux-dev", "sd3", "qwen-image"])
def test_self_weight_1_and_identical_views_are_the_unpatched_model(host, tiny, family):
    model, clip, _ = tiny(family)
    latent = views_latent(family)
    stock = partial_sample(host, model, clip, family, latent)
    for mode in (MEAN, EXTENDED):
        aligned = partial_sample(host, cross_view(host, model, latent, mode=mode), clip, family, latent)
        assert torch.isfinite(aligned).all() and not torch.allclose(aligned, stock, atol=1e-3)
    assert torch.equal(partial_sample(host, cross_view(host, model, latent, self_weight=1.0), clip, family, latent),
                       stock)
    same = latent[:1].expand(latent.shape).contiguous()
    plain = partial_sample(host, model, clip, family, same)
    torch.testing.assert_close(partial_sample(host, cross_view(host, model, same), clip, family, same), plain,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(partial_sample(host, cross_view(host, model, same, mode=EXTENDED), clip, family, same),
                               plain, atol=2e-5, rtol=0)


def explicit(q, k, v, views, refs, rows, self_weight, mode, bias=None):
    """Every row's aligned attention written out, float64: row r of chunk c reads rows c * rows + (r // V) * V + a
    of the references a; out ``[batch, tokens, heads * dim]``. ``bias`` ``[batch, tokens]``: each row's additive bias
    on its keys (a padded prompt's), a reference's keys with the reference row's."""
    q, k, v = (t.double() for t in (q, k, v))
    scale = q.shape[-1] ** -0.5
    bias = torch.zeros(q.shape[0], k.shape[2], dtype=torch.float64) if bias is None else bias.double()
    rows_of = {}

    def attention(i, keys, values):
        return torch.softmax(q[i] @ keys.transpose(-1, -2) * scale + rows_of[id(keys)], -1) @ values

    def keyed(keys, b):
        rows_of[id(keys)] = b
        return keys

    out = []
    for i in range(q.shape[0]):
        ref = [i // rows * rows + (i % rows) // views * views + a for a in refs]
        if mode == MEAN:
            own = attention(i, keyed(k[i], bias[i]), v[i])
            mean = torch.stack([attention(i, keyed(k[j], bias[j]), v[j]) for j in ref]).mean(0)
            row = self_weight * own + (1 - self_weight) * mean
        else:
            keys = keyed(torch.cat([k[i]] + [k[j] for j in ref], -2), torch.cat([bias[i]] + [bias[j] for j in ref]))
            row = attention(i, keys, torch.cat([v[i]] + [v[j] for j in ref], -2))
        out.append(row.transpose(0, 1).reshape(q.shape[2], -1))
    return torch.stack(out)


@pytest.mark.parametrize("family", ["flux-dev", "sd3"])
def test_one_block_is_the_explicit_softmax_per_reference(host, tiny, family):
    dit_views = importlib.import_module(host.pack.__name__ + ".hostkit.dit_views")
    dit = importlib.import_module(host.pack.__name__ + ".hostkit.dit_attention")
    model, clip, _ = tiny(family)
    latent = views_latent(family, views=3, seed=1)

    class Recorded(dit_views.CrossViewJoint):
        def attention(self, q, k, v, where, state):
            out = super().attention(q, k, v, where, state)
            self.seen.append((q, k, v, where.rows, where.chunks, out))
            return out

    for mode, refs in ((MEAN, (0, 2)), (EXTENDED, (1,))):
        policy = Recorded(3, refs, 0.6, mode)
        policy.seen = []
        patched = model.clone()
        block = dit.dit_blocks(model)[-1]   # Flux: the last single-stream block; SD3: the last joint block
        dit.install_dit_policy(patched, policy, [block], "test")
        partial_sample(host, patched, clip, family, latent, steps=1)
        (q, k, v, rows, chunks, out), = policy.seen
        assert rows == 3 and len(chunks) == (1 if family.startswith("flux") else 2)
        want = explicit(q, k, v, 3, refs, rows, 0.6, mode)
        torch.testing.assert_close(out.double(), want, atol=1e-5, rtol=1e-5)


def test_blocks_of_views_read_their_own_block(host):
    """A chunk of 2V rows (a pair in blocks; FlowEdit's 2 noises): row r reads the references of block r // V; a
    padded prompt's keys stay masked in the references' attention (the reference row's padding) and the extended
    keys'."""
    dit_views = importlib.import_module(host.pack.__name__ + ".hostkit.dit_views")
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(12, 2, 5, 4, generator=g) for _ in range(3))   # 2 chunks of 2 blocks of 3 views

    def attend(q, k, v, mask=None):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).flatten(2)

    # a prompt padded by 2 tokens in the second chunk's first block (a Qwen-Image pair of two prompt lengths,
    # ``PaddedPair``): every row of a block has its branch's prompt, so its padding
    pad = torch.zeros(12, 5)
    pad[6:9, 1:3] = float("-inf")
    for where, bias in ((SimpleNamespace(chunks=(1, 0), rows=6, pad=None, attend=attend), None),
                        (SimpleNamespace(chunks=(1, 0), rows=6, pad=pad[:, None, None], attend=attend), pad)):
        for mode, refs in ((MEAN, (0, 2)), (EXTENDED, (1,))):
            out = dit_views.CrossViewJoint(3, refs, 0.3, mode).attention(q, k, v, where, None)
            torch.testing.assert_close(out.double(), explicit(q, k, v, 3, refs, 6, 0.3, mode, bias), atol=1e-6,
                                       rtol=1e-6)


def flow_edit(host, model, clip, family, target=TARGET, **change):
    flux = family.startswith("flux")
    kw = dict(source_guidance=1.5 if flux else 3.5, target_guidance=5.5 if flux else 13.5, n_max=3, n_min=0, n_avg=1)
    kw.update(change)
    if not flux:
        kw["negative"] = encode(host, clip, "")
    return call(host, "InvertEditFlowEdit", model=model, source=encode(host, clip, SOURCE),
                target=encode(host, clip, target), **kw)[0]


def run(host, model, guider, latent, steps=4, seed=7):
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=seed)[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


@pytest.mark.parametrize("family", ["flux-dev", "sd3"])
def test_composes_with_flowedit_on_a_view_set(host, tiny, family):
    """FlowEdit's model calls hold its prompts as chunks of their own (source, target; SD3: each with its negative),
    V rows each, n_avg noises as blocks of V: every row reads the references of its own chunk and block. The patched
    model changes the edit; the same prompt twice still gives the views back (source and target rows see the same
    references); and the edit is the same where the host runs each prompt in a call of its own."""
    dit = importlib.import_module(host.pack.__name__ + ".hostkit.dit_attention")
    model, clip, _ = tiny(family)
    latent = views_latent(family, views=3, seed=2)
    layouts = []

    class Layout(host.pack.attention.policy.AttentionPolicy):
        pair = False

        def attention(self, q, k, v, where, state):
            layouts.append((where.chunks, where.rows))
            return where.attend(q, k, v)

    # a policy on the first block, applied before Cross-View Attention: it sees the model's calls as they are (one
    # applied after would be handed the references' rows too: apply Cross-View Attention last)
    watched = model.clone()
    dit.install_dit_policy(watched, Layout(), dit.dit_blocks(model)[:1], "test")
    watched = cross_view(host, watched, latent)
    plain = run(host, model, flow_edit(host, model, clip, family, n_avg=2), latent)
    edited = run(host, watched, flow_edit(host, watched, clip, family, n_avg=2), latent)
    prompts = 2 if family.startswith("flux") else 4   # source, target (SD3: and each one's negative)
    assert {(tuple(sorted(c)), rows) for c, rows in layouts} == {(tuple(range(prompts)), 6)}   # n_avg 2 x 3 views
    assert torch.isfinite(edited).all() and not torch.allclose(edited, plain, atol=1e-3)
    aligned = cross_view(host, model, latent)
    kept = run(host, aligned, flow_edit(host, aligned, clip, family, target=SOURCE,
                                        target_guidance=1.5 if family.startswith("flux") else 3.5), latent)
    torch.testing.assert_close(kept, latent, atol=1e-5, rtol=0)
    # each prompt in a model call of its own (the host's batching when memory is short): the same edit, so no row
    # read another prompt's rows
    import comfy.model_management
    batched = run(host, aligned, flow_edit(host, aligned, clip, family), latent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comfy.model_management, "get_free_memory", lambda *args, **kwargs: 0)
        layouts.clear()
        split = run(host, watched, flow_edit(host, watched, clip, family), latent)
    assert {len(c) for c, _ in layouts} == {1}
    torch.testing.assert_close(split, batched, atol=1e-5, rtol=0)


def test_composes_with_rf_inversion_on_a_view_set(host, tiny):
    """A view set inverted in one run (RF-Inversion's controlled forward ODE, unpatched as GaussCtrl inverts) and
    edited under the controlled reverse ODE on the aligned model: self_weight 1 is RF-Inversion's edit bit for bit,
    0.6 another edit."""
    model, clip, _ = tiny("flux-dev")
    latent = views_latent("flux-dev", views=3, seed=4)
    inv, noise, sigmas = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": latent},
                              positive=encode(host, clip, ""), steps=4, scheduler="simple", gamma=0.5, guidance=0.0,
                              seed=4)
    target = call(host, "FluxGuidance", conditioning=encode(host, clip, TARGET), guidance=3.5)[0]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def edit(m):
        control = call(host, "InvertEditRFInversion", model=m, inversion=inv, eta=0.9, start=0.0, stop=0.5,
                       eta_decay=0.0)[0]
        guider = call(host, "BasicGuider", model=control, conditioning=target)[0]
        return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=sigmas,
                    latent_image={"samples": latent})[0]["samples"]

    stock = edit(model)
    assert torch.equal(edit(cross_view(host, model, latent, self_weight=1.0)), stock)
    aligned = edit(cross_view(host, model, latent))
    assert torch.isfinite(aligned).all() and not torch.allclose(aligned, stock, atol=1e-4)


def test_the_flow_view_set_template_edits_every_view_alike(host):
    """Toy - View set edit (FlowEdit + cross-view attention) at the tests' quick settings (5 steps, n_max 4) on the
    toy flow world, read by the exact judge per view (``workshop/toyworld/views.py``): the circle yellow in every
    view, one reading over the set; FlowEdit view by view beside it is a picture too."""
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from invertedit.techniques.cross_view_attention.workflows import FLOW_NAME as NAME
    from workshop import make_workflows
    from workshop.headless import runner
    from workshop.toyworld import scenes as S
    from workshop.toyworld import views as V

    path = Path(__file__).resolve().parents[2] / "example_workflows" / f"{NAME}.json"
    prompt = runner.prepare_prompt(json.loads(path.read_text(encoding="utf-8")), host=host,
                                   overrides=make_workflows.toy_overrides(NAME, quick=True))
    shown: dict = {}
    for picture in runner.pictures(prompt, runner.execute(prompt, host=host)):
        image = Image.open(picture.path).convert("RGB").resize((S.SIZE, S.SIZE), Image.BILINEAR)
        shown.setdefault(picture.title, []).append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255))
    centre = V.SAMPLE_VIEWS.centre
    case = V.ViewEditCase(S.EditCase("colour", centre, centre.with_object(0, colour="yellow"), 0), V.SAMPLE_VIEWS)
    aligned = V.view_metrics(case, torch.stack(shown["Edited views (FlowEdit + cross-view attention)"]))
    plain = V.view_metrics(case, torch.stack(shown["View by view (FlowEdit alone)"]))
    print(f"{NAME} (quick): aligned {aligned['readings']}, kept {aligned['kept']:.2f}, background "
          f"{aligned['bg']:.1f} dB; view by view {plain['readings']}")
    assert aligned["success"] == 1.0 and aligned["agreement"] == 1.0 and aligned["bg"] > 20.0
    assert len(shown["View by view (FlowEdit alone)"]) == V.VIEWS


def test_the_references_cost_one_attention_call_whatever_their_count(host, tiny):
    """Dispatched operations a step (``workshop/benchmarks/flow_views_cost.py``): the references' attentions are one
    batched call, so R = 1 and R = 4 dispatch the same operations, a few a block more than stock (measured 10 to 11 a block:
    1.17x a stock step on Flux.1's 57 blocks)."""
    from workshop.benchmarks.dispatch_count import custom_per_step

    dit = importlib.import_module(host.pack.__name__ + ".hostkit.dit_attention")
    model, clip, _ = tiny("flux-dev")
    latent = views_latent("flux-dev", views=4)
    cond = encode(host, clip, SOURCE)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def ops(patch) -> float:
        return custom_per_step(host, model, lambda m, n: (call(host, "BasicGuider", model=patch(m), conditioning=cond)[0],
                                                          euler), latent, 2, "")["ops"]

    stock = ops(lambda m: m)
    one, four = (ops(lambda m, r=r: cross_view(host, m, latent, references=r)) for r in (1, 4))
    blocks = len(dit.dit_blocks(model))
    print(f"ops a step: stock {stock:.0f}, R = 1 {one:.0f}, R = 4 {four:.0f} ({(four - stock) / blocks:.1f} a block)")
    assert one == four and 0 < four - stock <= 12 * blocks
