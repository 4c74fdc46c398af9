"""Noise Map Guidance (NMG, Cho et al., ICLR 2024) through SamplerCustomAdvanced: the target rows
are plain CFG, the source's reconstruction follows the inversion trajectory on the trained toy
model (measured against plain CFG), gradients flow through weights loaded under inference mode,
the UNet cost per step, the sampler it needs, and parity with the reference code
(github.com/hansam95/NMG, ``NMGPipeline``) on the same weights.

The reference is taken from its public repository at test time (``NMG_PATH``: a checkout; else
the snapshot the ``fetch`` tool leaves at ``NMG_MIRROR``, default /work/.mirror/hansam95+NMG/repo),
never committed, and run unchanged in a subprocess (``tests/reference/nmg_runner.py``); without
it the parity test is skipped with one loud line.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err
from workshop.toyworld import world as W

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"
STEPS = 10   # Noise Map Guidance refuses inversions of fewer steps


def inverted(host, model, clip, latent, steps=STEPS):
    inv, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=encode(host, clip, SOURCE),
                            steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return inv, lat, sigmas


def sample(host, guider, sigmas, latent, sampler="ddim"):
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas,
                latent_image=latent)[0]["samples"]


def nmg(host, model, clip, inversion, positive, **change):
    args = dict(model=model, positive=positive, negative=encode(host, clip, ""), inversion=inversion, cfg=7.5,
                noise_map_scale=10.0, grad_scale=10.0, loss="l2")
    args.update(change)
    return call(host, "InvertEditNoiseMapGuidance", **args)[0]


def random_latent(size=8):
    return {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5.0}


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_target_rows_are_plain_cfg_and_the_source_is_guided(host, tiny, family):
    model, clip, _ = tiny(family)
    inv, lat, sigmas = inverted(host, model, clip, random_latent())
    pair = host.pack.hostkit.pair.encode_pair(clip, SOURCE, TARGET)
    out = sample(host, nmg(host, model, clip, inv, pair), sigmas, {"samples": lat["samples"].repeat(2, 1, 1, 1)})
    neg = encode(host, clip, "")
    plain = {text: sample(host, call(host, "CFGGuider", model=model, positive=encode(host, clip, text), negative=neg,
                                     cfg=7.5)[0], sigmas, lat) for text in (SOURCE, TARGET)}
    print(f"\n{family}: target row vs plain CFG {rel_err(out[1:], plain[TARGET]):.1e}; source row vs plain CFG "
          f"{rel_err(out[:1], plain[SOURCE]):.2f}")
    assert rel_err(out[1:], plain[TARGET]) < 1e-5      # no editor: NMG leaves the target's path alone
    assert rel_err(out[:1], plain[SOURCE]) > 1e-2


@pytest.fixture(scope="module")
def toy(host):
    """The Toy World Model as its node loads it (weights made under inference mode, as in a
    workflow), the sample scene's latent and its DDIM inversion in the paper's 50 steps."""
    model, clip, vae = call(host, "InvertEditToyModel", world="one object (128 px)")
    scene = W.Scene(background="blue", colour="red", shape="circle", cx=W.SIZE / 2, cy=W.SIZE / 2, size=28.0)
    latent = call(host, "VAEEncode", pixels=W.render(scene)[0][None], vae=vae)[0]
    inv, lat, sigmas = inverted(host, model, clip, latent, steps=50)
    return model, clip, latent, inv, lat, sigmas


def trajectory_distances(host, guider, toy) -> list[float]:
    """Each step's latent's distance to the inversion's latent at that step (relative), and the
    result's to the source latent."""
    model, _, latent, inv, lat, sigmas = toy
    seen = []
    run = guider.predict_noise

    def recording(x, timestep, *args, **kwargs):
        seen.append(x[:1].clone())
        return run(x, timestep, *args, **kwargs)

    guider.predict_noise = recording
    out = sample(host, guider, sigmas, lat)
    steps = [rel_err(x, inv.trajectory[i]) for i, x in enumerate(seen)]
    return steps + [rel_err(out, latent["samples"])]


def test_reconstruction_follows_the_inversion_trajectory_on_the_toy_model(host, toy):
    """Source prompt = target prompt (NMG's reconstruction), paper settings (cfg 10, scale 10,
    L1) with the gradient scale for this 16x16 latent (5000 at 64x64: the distance is a mean, so
    5000 * 1024 / 16384 per element here)."""
    model, clip, _, inv, _, _ = toy
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    plain = trajectory_distances(host, call(host, "CFGGuider", model=model, positive=pos, negative=neg, cfg=10.0)[0], toy)
    guided = trajectory_distances(host, nmg(host, model, clip, inv, pos, cfg=10.0, loss="l1",
                                            grad_scale=5000.0 * 1024 / 16384), toy)
    late = lambda d: sum(d[25:50]) / 25   # the second half of the steps, where plain CFG has drifted
    print(f"\nrelative distance to the inversion trajectory, mean of steps 25-49 / final vs source: plain CFG 10 "
          f"{late(plain):.3f} / {plain[-1]:.3f}; NMG {late(guided):.3f} / {guided[-1]:.3f}")
    assert late(guided) < 0.6 * late(plain)             # measured 0.18 vs 0.42
    assert guided[-1] < 0.65 * plain[-1]                # measured 0.18 vs 0.36


def test_cost_one_differentiated_unconditional_pass_and_one_batched_pass_per_step(host, tiny):
    model, clip, _ = tiny("sd1")
    inv, lat, sigmas = inverted(host, model, clip, random_latent())
    counted, calls = model.clone(), []
    counted.set_model_unet_function_wrapper(lambda apply, a: (calls.append((a["input"].shape[0], a["cond_or_uncond"],
                                                                            a["input"].requires_grad)),
                                                              apply(a["input"], a["timestep"], **a["c"]))[1])
    pair = host.pack.hostkit.pair.encode_pair(clip, SOURCE, TARGET)
    sample(host, nmg(host, counted, clip, inv, pair), sigmas, {"samples": lat["samples"].repeat(2, 1, 1, 1)})
    assert calls == [(2, [1], True), (4, [1, 0], False)] * (len(sigmas) - 1)


@pytest.mark.parametrize("mode,blend", [("replace", False), ("refine", False), ("refine", True)])
def test_with_attention_inject_in_each_mode(host, tiny, mode, blend):
    """NMG on Attention Inject's model (the workflow's chain) in both modes. Its differentiated pass runs the
    unconditional rows alone, a call with no target row: refine's extra rows for the target's own maps once
    crashed there (an index made from an empty list, a float tensor)."""
    model, clip, _ = tiny("sd1")
    inv, lat, sigmas = inverted(host, model, clip, random_latent())
    target = TARGET if mode == "replace" else "a red circle on a blue background with grass"
    m, pair, pair_latent = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat,
                                source_prompt=SOURCE, target_prompt=target, mode=mode, reweight="", cross_replace=0.8,
                                self_replace=0.4, local_blend=blend,
                                **(dict(blend_source_words="circle", blend_target_words="circle") if blend else {}))
    edited = sample(host, nmg(host, m, clip, inv, pair), sigmas, pair_latent)
    plain = sample(host, nmg(host, model, clip, inv, pair), sigmas, pair_latent)
    assert torch.isfinite(edited).all() and rel_err(edited[1:], plain[1:]) > 1e-3


def test_refusals(host, tiny):
    model, clip, _ = tiny("sd1")
    inv, lat, sigmas = inverted(host, model, clip, random_latent(), steps=10)
    pos = encode(host, clip, SOURCE)
    with pytest.raises(ValueError, match=r"Noise Map Guidance: sampler 'dpmpp_2m' steps differently from the DDIM step"):
        sample(host, nmg(host, model, clip, inv, pos), sigmas, lat, sampler="dpmpp_2m")
    direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
    with pytest.raises(ValueError, match=r"Noise Map Guidance: input 'inversion' is a direct inversion \(from Direct Inversion\), which already puts "
                                         r"the source back on its trajectory"):
        nmg(host, model, clip, direct, pos)


# -- parity with the reference code ---------------------------------------------------------------

PARITY_STEPS = 10
CASES = {   # grad scales for this 8x8 latent (256 elements; the paper's 5000 is for 16384)
    "pair, l1": dict(rows="pair", loss="l1", scale=10.0, grad_scale=2.0, cfg=10.0),
    "pair, l2": dict(rows="pair", loss="l2", scale=10.0, grad_scale=10.0, cfg=7.5),
    "pair, smooth l1": dict(rows="pair", loss="smooth_l1", scale=5.0, grad_scale=3.0, cfg=10.0),
    "reconstruction, l1": dict(rows="source", loss="l1", scale=10.0, grad_scale=2.0, cfg=10.0),
}
TOLERANCE = 5e-4   # relative, per row: max |ours - reference| / max |reference|
# smooth L1's, where the authors' transition point (beta 1e-4) turns float32 rounding into gradient: an element of
# the difference within 1e-4 of 0 has the gradient d / 1e-4, so rounding of 1e-7 in d moves it by 0.1%. Its source
# row: 3.4e-5 on the machines before, 6.5e-4 on this project's AVX2-only CPU (2026-11-29); the other rows 4e-6.
TOLERANCES = {"pair, smooth l1": 2e-3}
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "nmg_runner.py"


def reference_checkout(reference_copy, tmp: Path) -> Path | None:
    return reference_copy(tmp, "NMG", "hansam95/NMG", ("prompt_to_prompt",),
                          "prompt_to_prompt/pipeline_stable_diffusion_nmg.py")


def start_reference_early(request) -> dict | None:
    """Starts the reference run in the background at the session's first host test
    (``early_references``: on the machine's second core). None where the reference is absent."""
    host, tiny, tmp_path_factory, reference_copy, reference_run = (
        request.getfixturevalue(name) for name in ("host", "tiny", "tmp_path_factory", "reference_copy",
                                                   "reference_run"))
    tmp = tmp_path_factory.mktemp("nmg")
    checkout = reference_checkout(reference_copy, tmp / "code")
    if checkout is None:
        return None
    model, clip, vae = tiny("sd1")
    inv, lat, sigmas = inverted(host, model, clip, random_latent(), steps=PARITY_STEPS)
    maps = (inv.trajectory / (1 + inv.sigmas.reshape(-1, 1, 1, 1, 1) ** 2).sqrt()).flip(0)   # z_0 ... z_T
    job = reference_run.start(RUNNER, checkout, tmp, (model, clip, vae), noise_maps=list(maps), source=SOURCE,
                              target=TARGET, steps=PARITY_STEPS, cases=CASES)
    return {"inverted": (inv, lat, sigmas), "scale": model.model.latent_format.scale_factor, "job": job}


@pytest.fixture(scope="module")
def reference_results(request, early_references, skip_loudly):
    started = early_references[__name__] if __name__ in early_references else start_reference_early(request)
    if started is None:
        skip_loudly("NMG PARITY SKIPPED: the NMG code was not found (set NMG_PATH to a checkout of "
                    "github.com/hansam95/NMG, or fetch it)")
    return {"inverted": started["inverted"], "scale": started["scale"], "out": started["job"].result()}


def test_noise_map_guidance_matches_the_reference_code(host, tiny, reference_results):
    model, clip, _ = tiny("sd1")
    inv, lat, sigmas = reference_results["inverted"]
    pair = host.pack.hostkit.pair.encode_pair(clip, SOURCE, TARGET)
    worst = {}
    for name, case in CASES.items():
        kw = dict(cfg=case["cfg"], noise_map_scale=case["scale"], grad_scale=case["grad_scale"], loss=case["loss"])
        if case["rows"] == "pair":
            ours = sample(host, nmg(host, model, clip, inv, pair, **kw), sigmas,
                          {"samples": lat["samples"].repeat(2, 1, 1, 1)})
        else:
            ours = sample(host, nmg(host, model, clip, inv, encode(host, clip, SOURCE), **kw), sigmas, lat)
        ours, ref = ours * reference_results["scale"], reference_results["out"][name]
        worst[name] = [float((ours[r] - ref[r]).abs().max() / ref[r].abs().max()) for r in range(ref.shape[0])]
    print({k: [f"{e:.1e}" for e in v] for k, v in worst.items()})
    assert all(e < TOLERANCES.get(name, TOLERANCE) for name, errors in worst.items() for e in errors), worst
