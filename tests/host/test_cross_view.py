"""Cross-View Attention (GaussCtrl's attention-based latent alignment, issue 83): exact properties on
the tiny SD model, and parity with the authors' ``CrossViewAttnProcessor`` on the same weights.

The parity reference is ActiveVisionLab/gaussctrl's ``gaussctrl/utils.py``, taken from its public
repository at test time (``GAUSSCTRL_PATH``: a checkout; else the ``fetch`` tool's snapshot at
``GAUSSCTRL_MIRROR``, default /work/.mirror/ActiveVisionLab+gaussctrl/repo), never committed, run
unchanged in a subprocess (``tests/reference/gaussctrl_runner.py``) on a diffusers UNet carrying the
tiny model's weights; without it the test is skipped with one loud line. GaussCtrl's references are
views 0-3 of every chunk (its pipeline puts the 4 references first in each batch), so the pack runs
with reference_views '0, 1, 2, 3' on a set of 6 views: one UNet call of 12 rows (unconditional,
then conditional), every self-attention layer aligned at self weight 0.6, the cross-attention
plain."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode

VIEWS = 6
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "gaussctrl_runner.py"


@pytest.fixture(scope="module")
def setup(host, tiny):
    model, clip, _ = tiny("sd1")
    latent = torch.randn(VIEWS, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 3.0
    return model, clip, latent


def unet_call(host, model, x, sigma, context, chunks=(1, 0)):
    """One host denoiser call of ``model`` on ``x`` with its patches, returning the UNet's output (eps)."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([model])
    base = model.model
    seen = {}
    handle = base.diffusion_model.register_forward_hook(lambda m, a, out: seen.__setitem__("out", out.clone()))
    options = dict(model.model_options.get("transformer_options", {}), cond_or_uncond=list(chunks),
                   sample_sigmas=torch.tensor([float(sigma[0]), 0.5, 0.0]), sigmas=sigma[:1])   # step 0 of 2
    try:
        base.apply_model(x, sigma, c_crossattn=context, transformer_options=options)
    finally:
        handle.remove()
    return seen["out"]


def patched(host, model, latent, **kw):
    return call(host, "InvertEditCrossViewAttention", model=model, latent={"samples": latent}, **kw)[0]


def pair_inputs(host, clip, latent):
    uncond, cond = encode(host, clip, "")[0][0], encode(host, clip, "a red circle")[0][0]
    x = torch.cat([latent, latent])
    context = torch.cat([uncond.expand(VIEWS, -1, -1), cond.expand(VIEWS, -1, -1)])
    return x, torch.full((2 * VIEWS,), 2.0), context


def test_self_weight_one_is_the_model(host, setup):
    model, clip, latent = setup
    x, sigma, context = pair_inputs(host, clip, latent)
    plain = unet_call(host, model, x, sigma, context)
    same = unet_call(host, patched(host, model, latent, references=4, self_weight=1.0), x, sigma, context)
    assert torch.equal(plain, same)


def test_identical_views_are_unchanged(host, setup):
    """Attention on a reference that is the view itself is the view's own attention."""
    model, clip, latent = setup
    still = latent[:1].expand(VIEWS, -1, -1, -1).contiguous()
    x, sigma, context = pair_inputs(host, clip, still)
    plain = unet_call(host, model, x, sigma, context)
    for mode in host.pack.attention.cross_view.MODES:
        aligned = unet_call(host, patched(host, model, still, self_weight=0.3, mode=mode), x, sigma, context)
        assert torch.allclose(plain, aligned, atol=1e-5, rtol=1e-4), mode


def test_views_read_each_other(host, setup):
    """Aligned views move towards each other: the spread of the views' outputs shrinks."""
    model, clip, latent = setup
    x, sigma, context = pair_inputs(host, clip, latent)
    plain = unet_call(host, model, x, sigma, context)
    aligned = unet_call(host, patched(host, model, latent, self_weight=0.0), x, sigma, context)
    spread = lambda out: out.view(2, VIEWS, -1).std(dim=1).mean()   # noqa: E731
    assert spread(aligned) < spread(plain)


def test_composes_with_an_attention_editor(host, setup):
    """Attention Inject's policy hands its attention to the host's, where the alignment runs: applied after
    or before the editor, the same result, and not the editor's alone."""
    model, clip, latent = setup
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent={"samples": latent},
                       positive=encode(host, clip, "a red circle"), steps=2, scheduler="ddim_uniform",
                       start_at_step=0, cfg=1.0)
    common = dict(clip=clip, latent=lat, source_prompt="a red circle", target_prompt="a blue circle",
                  mode="replace", reweight="", cross_replace=0.8, self_replace=0.0, local_blend=False)
    inject = lambda m: call(host, "InvertEditAttentionInject", model=m, **common)   # noqa: E731
    edited, positive, pair = inject(model)[:3]
    x = pair["samples"]
    sigma = torch.full((2 * x.shape[0],), 2.0)
    context = torch.cat([encode(host, clip, "")[0][0].expand(x.shape[0], -1, -1), positive[0][0]])
    after = unet_call(host, patched(host, edited, latent, self_weight=0.4), torch.cat([x, x]), sigma, context)
    before = unet_call(host, inject(patched(host, model, latent, self_weight=0.4))[0], torch.cat([x, x]), sigma,
                       context)
    alone = unet_call(host, edited, torch.cat([x, x]), sigma, context)
    assert torch.allclose(after, before, atol=1e-6)
    assert not torch.allclose(after, alone, atol=1e-4)


def test_gaussctrl_parity(host, setup, bridge, reference_copy, skip_loudly, tmp_path):
    checkout = reference_copy(tmp_path / "code", "GAUSSCTRL", "ActiveVisionLab/gaussctrl", ("gaussctrl",),
                              "gaussctrl/utils.py")
    if checkout is None:
        skip_loudly("GAUSSCTRL PARITY SKIPPED: ActiveVisionLab/gaussctrl's code was not found (set GAUSSCTRL_PATH to "
                    "a checkout, or fetch github:ActiveVisionLab/gaussctrl into /work/.mirror).")
    model, clip, latent = setup
    x, sigma, context = pair_inputs(host, clip, latent)
    ours = unet_call(host, patched(host, model, latent, reference_views="0, 1, 2, 3", self_weight=0.6), x, sigma,
                     context)
    ms = model.model.model_sampling
    job = {"checkout": str(checkout), "unet": bridge.diffusers_unet(model), "self_attn_coeff": 0.6,
           "x": x / (sigma ** 2 + 1).sqrt()[:, None, None, None], "t": ms.timestep(sigma).float(), "context": context}
    torch.save(job, tmp_path / "job.pt")
    env = dict(os.environ, PYTHONPATH=str(RUNNER.parent))
    done = subprocess.run([sys.executable, str(RUNNER), str(tmp_path / "job.pt"), str(tmp_path / "out.pt")], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the reference run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    want = torch.load(tmp_path / "out.pt")["eps"]
    error = float((ours - want).abs().max() / want.abs().max())
    plain = unet_call(host, model, x, sigma, context)
    print(f"GaussCtrl parity: max relative error {error:.2e} (the unaligned model's: "
          f"{float((plain - want).abs().max() / want.abs().max()):.2e})")
    assert error < 1e-5


from test_editor_composition import tiny_controlnet  # noqa: E402, F401  (a fixture: tests/host is on the path)


def test_gaussctrl_recipe_with_a_depth_controlnet(host, setup, tiny_controlnet):  # noqa: F811  (the fixture)
    """GaussCtrl's recipe on the host's stock nodes: a ControlNet on every view (one hint per view) with Plug-and-Play
    and Cross-View Attention, one sampling run of the pair of view sets; the ControlNet and the alignment both act."""
    from workshop.headless.calls import rel_err

    model, clip, latent = setup
    prompt, neg = encode(host, clip, "a red circle"), encode(host, clip, "")
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent={"samples": latent}, positive=prompt, steps=3,
                       scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    m, cond, pair = call(host, "InvertEditPlugAndPlay", model=model, clip=clip, latent=lat, source_prompt="a red circle",
                         target_prompt="a blue circle", feature_injection=0.8, self_attention_injection=0.5)
    hints = torch.rand(VIEWS, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    hints = torch.cat([hints, hints])   # the pair's 2V rows: each view's depth for its source and target rows
    controlled = call(host, "ControlNetApplyAdvanced", positive=cond, negative=neg, control_net=tiny_controlnet,
                      image=hints, strength=1.0, start_percent=0.0, end_percent=1.0)

    def sample(m, c, n):
        return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=3, cfg=5.0,
                    sampler_name="ddim", scheduler="ddim_uniform", positive=c, negative=n, latent_image=pair,
                    start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]

    aligned = patched(host, m, latent)
    recipe = sample(aligned, *controlled[:2])
    assert recipe.shape == (2 * VIEWS, 4, 8, 8) and torch.isfinite(recipe).all()
    assert rel_err(recipe, sample(aligned, cond, neg)) > 1e-3        # the ControlNet acts
    assert rel_err(recipe, sample(m, *controlled[:2])) > 1e-3        # the alignment acts


def test_the_sd15_view_set_template_is_set_for_a_checkpoint(host, tmp_path):
    """As shipped (no swap): Load Checkpoint of SD1.5, Load Image of the toy views (an animated PNG of 4 views), every
    view scaled to SD1.5's 0.25 MP, 50 DDIM steps, Attention Inject at PIE-Bench's fractions with the local blend
    off, Cross-View Attention at GaussCtrl's settings, the edited views as rows V..2V-1; the host accepts the graph
    once a checkpoint of that name exists."""
    import asyncio
    import json

    import folder_paths

    from invertedit.workflows.checkpoint import SD15
    from workshop.headless import runner

    path = runner.PACK_DIR / "example_workflows" / "SD1.5 - View set edit (your checkpoint).json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt = runner.prepare_prompt(workflow, host=host)
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert [i["ckpt_name"] for i in by_type["CheckpointLoaderSimple"]] == [SD15.ckpt]
    assert [i["image"] for i in by_type["LoadImage"]] == ["toy_views_two_objects.png"]
    assert by_type["ImageScaleToTotalPixels"][0]["megapixels"] == 0.25
    assert all(i["steps"] == 50 for i in by_type["KSamplerAdvanced"] + by_type["InvertEditDDIMInvert"])
    (inject,) = by_type["InvertEditAttentionInject"]
    assert (inject["cross_replace"], inject["self_replace"], inject["local_blend"]) == (0.4, 0.6, False)
    (cross,) = by_type["InvertEditCrossViewAttention"]
    assert (cross["references"], cross["self_weight"], cross["mode"]) == (4, 0.6, "mean of references (GaussCtrl)")
    assert {(n["batch_index"], n["length"]) for n in by_type["ImageFromBatch"]} == {(0, 4), (4, 4)}
    assert "SaveAnimatedPNG" in by_type and "SaveImage" in by_type
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / SD15.ckpt).write_bytes(b"not loaded: the prompt is only validated")
    folder_paths.add_model_folder_path("checkpoints", str(folder), is_default=True)
    valid, error, _, node_errors = asyncio.run(host.execution.validate_prompt(
        "test", json.loads(json.dumps(prompt)), None))
    assert valid and not node_errors, (error, node_errors)
