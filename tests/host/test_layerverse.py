"""LayerVerse (``InvertEditLayerVerse`` with Flow Invert's ``layerverse_keep``; Zhirnov et al., ECCV'26):

- the policy's exact property: a masked block's image keys and values are the source's outside the editing mask
  and the edit's own inside it, a global block's the source's everywhere, the text's always the edit's own; a step
  past ``inject_steps`` or a call with nothing kept is untouched; SD3.5's image-only second attention is read under
  its own key; the two keyings of the authors' codes (Flux: the inversion's call at a step's low end serves the
  edit's at its high end; SD3: the same sigma);
- on the tiny Flux and SD3: only the allocation's blocks are patched, what Flow Invert keeps (blocks x evaluations),
  the presets refused on a model of another depth;
- parity with the authors' FLUX code (``LayerVerse_FLUX/src/flux``, ``tests/reference/layerverse_runner.py``) on the
  same weights, with the mask given (their automatic mask is not ported); skipped loudly where the code is absent
  (``v-gen-ai/LayerVerse`` could not be mirrored for this project);
- the cost per model evaluation at the real models' depth against a stock euler evaluation."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
SIZE, STEPS = 16, 6   # latent 16x16 (an 8x8 patch grid), 6 FireFlow steps
TOLERANCE = 5e-4      # relative: max |ours - theirs| / max |theirs|
SCHEDULE = [1.0, 0.75, 0.5, 0.25, 0.0]


# ----------------------------------------------------------------------------- the policy, exactly
def _where(host, block, text, grid, sigma, seen, rows=1):
    JointWhere = host.pack.attention.policy.JointWhere

    def attend(q, k, v, mask=None):
        seen.append((k.clone(), v.clone()))
        return torch.zeros(q.shape[0], q.shape[2], q.shape[1] * q.shape[3])

    return JointWhere(block=block, chunks=(0,), rows=rows, heads=2, text=text, grid=grid, attend=attend,
                      time=lambda: (sigma, SCHEDULE))


def _qkv(rows, tokens, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(rows, 2, tokens, 4, generator=g) for _ in range(3))


def test_masked_blocks_keep_the_source_outside_the_mask_and_global_blocks_everywhere(host):
    P = host.pack.techniques.layerverse.policy
    text, grid = 3, (2, 3)
    image = grid[0] * grid[1]
    edited = torch.tensor([[True, False, False], [False, True, False]])
    source = {}
    for n, block in enumerate((("double_block", 0), ("single_block", 1), ("double_block", 1))):
        g = torch.Generator().manual_seed(10 + n)
        source[(1, False, *block, False)] = (torch.randn(1, 2, image, 4, generator=g),
                                              torch.randn(1, 2, image, 4, generator=g))
    policy = P.InjectKeysValues(source, SCHEDULE, "flux", [("single_block", 1)], edited, steps=4)
    for rows in (1, 2):   # SD3's batch of a conditional and an unconditional row: both take the one source
        q, k, v = _qkv(rows, text + image, seed=rows)
        for block in (("double_block", 0), ("single_block", 1)):
            seen = []
            policy.attention(q, k, v, _where(host, block, text, grid, 0.75, seen, rows), policy.make_state())
            (k2, v2), = seen
            src_k, src_v = source[(1, False, *block, False)]
            inside = edited.flatten()
            for got, own, src in ((k2, k, src_k), (v2, v, src_v)):
                assert torch.equal(got[:, :, :text], own[:, :, :text])             # the text: the edit's own
                img = got[:, :, text:]
                if block == ("single_block", 1):                                   # global: the source everywhere
                    assert torch.equal(img, src.expand(rows, -1, -1, -1))
                else:                                                              # masked
                    assert torch.equal(img[:, :, inside], own[:, :, text:][:, :, inside])
                    assert torch.equal(img[:, :, ~inside], src.expand(rows, -1, -1, -1)[:, :, ~inside])
    # nothing kept for this call (double block 1 at another step), and a step past inject_steps: untouched
    q, k, v = _qkv(1, text + image, seed=5)
    for policy_steps, sigma, block in ((4, 0.5, ("double_block", 0)), (1, 0.75, ("double_block", 0))):
        p = P.InjectKeysValues(source, SCHEDULE, "flux", [], edited, steps=policy_steps)
        seen = []
        p.attention(q, k, v, _where(host, block, text, grid, sigma, seen), p.make_state())
        assert torch.equal(seen[0][0], k) and torch.equal(seen[0][1], v)
    # without a mask (the authors' use_mask off) a masked block takes the source everywhere
    p = P.InjectKeysValues(source, SCHEDULE, "flux", [], None, steps=4)
    seen = []
    p.attention(q, k, v, _where(host, ("double_block", 0), text, grid, 0.75, seen), p.make_state())
    assert torch.equal(seen[0][0][:, :, text:], source[(1, False, "double_block", 0, False)][0])


def test_sd3_5_s_image_only_attention_is_read_under_its_own_key(host):
    P = host.pack.techniques.layerverse.policy
    grid, image = (2, 2), 4
    g = torch.Generator().manual_seed(3)
    joint = (torch.randn(1, 2, image, 4, generator=g), torch.randn(1, 2, image, 4, generator=g))
    second = (torch.randn(1, 2, image, 4, generator=g), torch.randn(1, 2, image, 4, generator=g))
    kept = {(1, False, "double_block", 0, False): joint, (1, False, "double_block", 0, True): second}
    p = P.InjectKeysValues(kept, SCHEDULE, "sd3", [("double_block", 0)], None, steps=4)
    q, k, v = _qkv(1, image, seed=4)
    seen = []
    p.attention(q, k, v, _where(host, ("double_block", 0), 0, grid, 0.75, seen), p.make_state())
    assert torch.equal(seen[0][0], second[0]) and torch.equal(seen[0][1], second[1])


def test_the_keyings_are_the_authors_codes(host):
    """Flux (their layers.py, RF-Solver-Edit's keying): the inversion's call at schedule point 2 is step 1's, its
    half step between points 2 and 1 step 1's half; SD3 (their mmditx.py, by sigma): point 2 is step 2's."""
    P = host.pack.techniques.layerverse.policy
    q, k, v = _qkv(1, 3 + 4, seed=6)
    for keying, sigma, key in (("flux", 0.5, (1, False)), ("flux", 0.625, (1, True)), ("sd3", 0.5, (2, False)),
                               ("sd3", 0.625, (1, True))):
        sink = {}
        P.KeepKeysValues(sink, torch.Tensor.clone, keying).attention(
            q, k, v, _where(host, ("single_block", 0), 3, (2, 2), sigma, []))
        (got,) = sink
        assert got == (*key, "single_block", 0, False), (keying, sigma, got)
        assert torch.equal(sink[got][0], k[:, :, 3:])


def test_the_allocation_texts(host):
    A = host.pack.techniques.layerverse.allocation
    flux = A.preset_allocation("LayerVerse (Flux.1 dev)", "", "")
    assert flux.masked == (("double_block", 1),) + tuple(("single_block", i) for i in range(32, 38))
    assert flux.global_ == (("double_block", 2),)
    sd3 = A.preset_allocation("LayerVerse (SD3.5 medium)", "", "")
    assert [i for _, i in sd3.masked] == [0, 1, 3, 4, 12, 14, 17, 18, 19] and [i for _, i in sd3.global_] == [20, 21,
                                                                                                              22, 23]
    both = A.allocation("double 1-2; single 0", "double 2")   # a block in both lists is global (their is_global)
    assert both.masked == (("double_block", 1), ("single_block", 0)) and both.global_ == (("double_block", 2),)
    assert A.format_blocks(flux.masked) == "double 1; single 32-37"
    assert A.scaled_blocks(list(flux.masked), (19, 38), (2, 4)) == [("double_block", 0), ("single_block", 3)]


# ----------------------------------------------------------------------------- on the tiny models
def _invert(host, model, clip, keep="every block", steps=3, solver="fireflow"):
    raw = torch.randn(1, 16, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    source = call(host, "CLIPTextEncode", clip=clip, text="a red circle")[0]
    return raw, call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                     solver=solver, steps=steps, scheduler="simple", guidance=1.0, layerverse_keep=keep)


def test_only_the_allocation_s_blocks_are_patched_and_the_kept_evaluations(host, tiny):
    for family, masked, glob, blocks in (("flux-dev", "double 0", "single 1", 4), ("sd3", "0", "1", 2)):
        model, clip, _ = tiny(family)
        _, (inv, noise, sigmas) = _invert(host, model, clip)
        pairs = host.pack.techniques.layerverse.glue.kept_keys_values(inv.clues)
        assert len(pairs) == blocks * (3 + 1)   # FireFlow: one evaluation at the image, then one half step a step
        patched = call(host, "InvertEditLayerVerse", model=model, inversion=inv, preset="custom", masked_blocks=masked,
                       global_blocks=glob)[0]
        dit = patched.model_options["transformer_options"]["patches_replace"]["dit"]
        A = host.pack.techniques.layerverse.allocation
        assert set(dit) == set(A.allocation(masked, glob).blocks), (family, set(dit))


def test_the_edit_moves_with_the_injection(host, tiny):
    """The patched model's FireFlow edit differs from the plain one, and a mask covering most of the image brings it
    back towards the plain edit (the masked blocks keep the edit's own keys and values there)."""
    model, clip, _ = tiny("flux-dev")
    raw, (inv, noise, sigmas) = _invert(host, model, clip)
    target = call(host, "CLIPTextEncode", clip=clip, text="a blue square")[0]
    sampler = call(host, "InvertEditFlowSampler", solver="fireflow")[0]

    def sample(m):
        guider = call(host, "BasicGuider", model=m, conditioning=target)[0]
        return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                    latent_image={"samples": raw})[0]["samples"]

    plain = sample(model)
    every = "double 0-1; single 0-1"
    masked = sample(call(host, "InvertEditLayerVerse", model=model, inversion=inv, preset="custom",
                         masked_blocks=every, global_blocks="")[0])
    mask = torch.ones(1, SIZE * 8, SIZE * 8)
    mask[:, :16, :16] = 0   # every patch but the first in the editing region
    freed = sample(call(host, "InvertEditLayerVerse", model=model, inversion=inv, preset="custom",
                        masked_blocks=every, global_blocks="", mask=mask)[0])
    assert (masked - plain).abs().max() > 1e-3
    assert (freed - plain).abs().mean() < 0.5 * (masked - plain).abs().mean()


# ----------------------------------------------------------------------------- parity with the authors' code
@pytest.fixture(scope="module")
def checkout(tmp_path_factory, reference_copy):
    tmp = tmp_path_factory.mktemp("layerverse_parity")
    return reference_copy(tmp, "LAYERVERSE", "v-gen-ai/LayerVerse", ("LayerVerse_FLUX/src/flux",),
                          "LayerVerse_FLUX/src/flux/sampling.py")


def test_layerverse_matches_the_authors_flux_code(host, tiny, checkout, skip_loudly):
    if checkout is None:
        skip_loudly("LAYERVERSE PARITY SKIPPED: the LayerVerse code was not found: v-gen-ai/LayerVerse is not mirrored "
                    "(set LAYERVERSE_PATH to a checkout of github.com/v-gen-ai/LayerVerse, or fetch it to "
                    "/work/.mirror/v-gen-ai+LayerVerse/repo)")
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import bfl_flux_params, flux_ids, pack_latents

    model, clip, _ = tiny("flux-dev")
    net = model.model.diffusion_model
    raw, (inv, noise, sigmas) = _invert(host, model, clip, steps=STEPS)
    source = call(host, "CLIPTextEncode", clip=clip, text="a red circle")[0]
    target = call(host, "CLIPTextEncode", clip=clip, text="a blue square")[0]
    mask = torch.zeros(1, SIZE * 8, SIZE * 8)
    mask[:, 32:96, 48:112] = 1   # patches (rows 2-5, columns 3-6) of the 8x8 grid
    patched = call(host, "InvertEditLayerVerse", model=model, inversion=inv, preset="custom",
                   masked_blocks="double 0; single 1", global_blocks="double 1", mask=mask)[0]
    guider = call(host, "BasicGuider", model=patched,
                  conditioning=call(host, "FluxGuidance", conditioning=target, guidance=2.0)[0])[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
               sampler=call(host, "InvertEditFlowSampler", solver="fireflow")[0], sigmas=sigmas,
               latent_image={"samples": raw})[0]["samples"]
    ours = pack_latents(model.model.process_latent_in(out).float())
    grid = torch.zeros(SIZE // 2, SIZE // 2)
    grid[2:6, 3:7] = 1
    img_ids, txt_ids = flux_ids(SIZE, SIZE, source[0][0].shape[1])
    job = {"state_dict": {k: v.detach().float().clone() for k, v in net.state_dict().items()},
           "params": bfl_flux_params(net), "img": pack_latents(model.model.process_latent_in(raw).float()),
           "img_ids": img_ids[None], "txt_ids": txt_ids[None], "latent_size": (SIZE, SIZE),
           "source": (source[0][0].float(), source[0][1]["pooled_output"].float()),
           "target": (target[0][0].float(), target[0][1]["pooled_output"].float()),
           "timesteps": sigmas.float().tolist(), "inversion_guidance": 1.0, "guidance": 2.0,
           "function": "denoise_fireflow", "selected_double_blocks": [0, 1], "selected_single_blocks": [1],
           "global_double_blocks": [1], "global_single_blocks": [], "mask": grid, "inject_step": STEPS}
    runs = checkout / "runs"
    runs.mkdir(exist_ok=True)
    torch.save(job, runs / "job.pt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout / "LayerVerse_FLUX" / "src"), str(REFERENCE)]))
    done = subprocess.run([sys.executable, str(REFERENCE / "layerverse_runner.py"), str(runs / "job.pt"),
                           str(runs / "out.pt")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    theirs = torch.load(runs / "out.pt", weights_only=False)
    inverted = pack_latents(inv.trajectory[0].float())
    err_inv = ((inverted - theirs["inverted"]).abs().max() / theirs["inverted"].abs().max()).item()
    err = ((ours - theirs["sample"]).abs().max() / theirs["sample"].abs().max()).item()
    print(f"\nLayerVerse vs their FLUX code (FireFlow, {STEPS} steps): inverted {err_inv:.2e}, edit {err:.2e}")
    assert err_inv <= TOLERANCE and err <= TOLERANCE


# ----------------------------------------------------------------------------- cost per evaluation
def test_the_cost_per_evaluation_at_the_real_models_depth(host):
    """LayerVerse's preset (with a mask) + the Flow Sampler's fireflow against fireflow alone and a stock euler
    evaluation, per model evaluation, on the tiny random Flux.1 dev (19 + 38 blocks) and SD3.5 medium's depth (24
    joint blocks; cfg 7.5, the authors')."""
    from workshop.benchmarks import dispatch_count as D

    steps = 2
    for family, preset in (("flux-dev", "LayerVerse (Flux.1 dev)"), ("sd3", "LayerVerse (SD3.5 medium)")):
        model, clip = D.flow_models(host, family, real_depth=True)
        target, empty = D.encode(host, clip, D.TARGET), D.encode(host, clip, "")
        latent = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
        mask = torch.zeros(1, 128, 128)
        mask[:, 32:96, 32:96] = 1
        kept = {n: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=target,
                        solver="fireflow", steps=n, scheduler="simple", guidance=1.0, layerverse_keep=preset)[0]
                for n in (steps, 2 * steps)}
        fireflow = call(host, "InvertEditFlowSampler", solver="fireflow")[0]
        euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

        def guider(m):
            if family == "sd3":
                return call(host, "CFGGuider", model=m, positive=target, negative=empty, cfg=7.5)[0]
            return call(host, "BasicGuider", model=m, conditioning=target)[0]

        def injected(m, n):
            m = call(host, "InvertEditLayerVerse", model=m, inversion=kept[n], preset=preset, masked_blocks="",
                     global_blocks="", mask=mask)[0]
            return guider(m), fireflow

        rows = [D.custom_per_step(host, model, lambda m, n: (guider(m), euler), latent, steps, "stock euler"),
                D.custom_per_step(host, model, lambda m, n: (guider(m), fireflow), latent, steps, "fireflow"),
                D.custom_per_step(host, model, injected, latent, steps, f"{preset} + fireflow")]
        for row in rows:
            row["per_nfe"] = row["ops"] / row["calls"]
            print(f"{family}: {row['label']}: {row['per_nfe']:.0f} ops per evaluation ({row['calls']:g} a step), "
                  f"{row['per_nfe'] / rows[0]['per_nfe']:.3f}x stock euler, {row['syncs']:g} waits a step")
        stock, plain, layerverse = rows
        assert layerverse["calls"] == plain["calls"]
        assert layerverse["per_nfe"] / stock["per_nfe"] <= 1.10, layerverse
        assert layerverse["syncs"] <= plain["syncs"] + layerverse["calls"], layerverse


def test_stable_flow_takes_layerverse_s_blocks_as_its_vital_blocks(host, tiny):
    """Stable Flow's block_preset 'LayerVerse (Flux.1 dev)' puts LayerVerse's blocks (either role) in place of its
    lists; on the tiny Flux (2 + 2 blocks) they are refused by the block numbers' own check."""
    model, clip, _ = tiny("flux-dev")
    cond = call(host, "CLIPTextEncode", clip=clip, text="a red circle")[0]
    presets = host.pack.attention.block_presets
    assert presets.active_blocks("LayerVerse (Flux.1 dev)", "double_block") == (1, 2)
    assert presets.active_blocks("LayerVerse (Flux.1 dev)", "single_block") == tuple(range(32, 38))
    with pytest.raises(ValueError, match="input 'double_blocks' names double block 2, but the model has 2"):
        call(host, "InvertEditStableFlow", model=model, source=cond, target=cond, double_blocks="0",
             single_blocks="0", block_preset="LayerVerse (Flux.1 dev)")
    patched = call(host, "InvertEditStableFlow", model=model, source=cond, target=cond, double_blocks="0",
                   single_blocks="1", block_preset="custom")[0]
    assert set(patched.model_options["transformer_options"]["patches_replace"]["dit"]) == {("double_block", 0),
                                                                                         ("single_block", 1)}


def test_sd3_5_s_second_attention_is_kept_and_injected_through_the_driver(host, monkeypatch):
    """On a tiny SD3 with SD3.5's second, image-only attention in joint block 0 (``x_block_self_attn_layers``):
    Flow Invert keeps that attention's keys and values under their own key, and the edit reads them (the authors'
    ``key_suffix="_self"``); joint block 1, without one, keeps its joint attention's alone."""
    import dataclasses

    tiny_flow = host.pack.demo.tiny_flow_models
    spec = tiny_flow.SPECS["sd3"]
    monkeypatch.setitem(tiny_flow.SPECS, "sd3", dataclasses.replace(
        spec, unet_config={**spec.unet_config, "x_block_self_attn_layers": [0]}))
    model, clip, _ = tiny_flow.build_tiny_flow_models("sd3", seed=0)
    raw, (inv, noise, sigmas) = _invert(host, model, clip, steps=2)
    pairs = host.pack.techniques.layerverse.glue.kept_keys_values(inv.clues)
    second = {key[2:] for key in pairs if key[4]}
    assert second == {("double_block", 0, True)}, second
    assert len(pairs) == (2 + 1) * 3   # 3 evaluations; block 0 twice (joint and second), block 1 once
    target = call(host, "CLIPTextEncode", clip=clip, text="a blue square")[0]
    sampler = call(host, "InvertEditFlowSampler", solver="fireflow")[0]
    # the same inversion without the second attention's keys and values: the edit reads them, so it moves
    joint_only = dataclasses.replace(inv, clues={name: t for name, t in inv.clues.items() if not name.endswith(
        (".1.k", ".1.v"))})
    outs = []
    for inversion in (inv, joint_only):
        patched = call(host, "InvertEditLayerVerse", model=model, inversion=inversion, preset="custom",
                       masked_blocks="0", global_blocks="")[0]
        guider = call(host, "CFGGuider", model=patched, positive=target, negative=target, cfg=1.0)[0]
        outs.append(call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                         latent_image={"samples": raw})[0]["samples"])
    assert (outs[0] - outs[1]).abs().max() > 1e-4
