"""DragDiffusion (``InvertEditDragDiffusionLoRA``, ``InvertEditDragDiffusion``): the decoder levels it reads, the
identity LoRA (the identity at 0 steps; a few steps change it), the reference self-attention (a pair of equal
latents denoises to equal rows), and parity with the authors' code (``Yujun-Shi/DragDiffusion``'s
``drag_diffusion_update`` and its pipeline's final denoising under ``MutualSelfAttentionControl``), run unchanged by
``tests/reference/drag_diffusion_runner.py`` on the tiny SD1.5-layout model's weights converted to diffusers. The
templates run in ``test_workflows.py`` / ``test_half_precision.py``; the refusals are cases of the bad-input table
(``tests/host/bad_inputs_drag_diffusion.py``)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from workshop.headless.calls import call

PROMPT = "a red circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "drag_diffusion_runner.py"
TOLERANCE = 1e-3   # relative: max |ours - reference| / max |reference|


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def test_the_decoder_levels_each_family_can_give(host, tiny):
    from invertedit.hostkit.decoder_features import decoder_entries

    assert decoder_entries(tiny("sd1-layout")[0]) == [0, 3, 6, 9]   # SD1.5's: the code's level 3 enters block 9
    assert decoder_entries(tiny("sd1")[0]) == [0, 3]
    assert decoder_entries(tiny("sdxl")[0]) == [0, 3, 6]   # SDXL's three levels: 1 and 2 readable


def test_the_lora_is_the_identity_at_zero_steps_and_learns_in_a_few(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    args = dict(positive=pos, latent=latent, learning_rate=5e-4, rank=4, batch_size=2, seed=0)
    same, lora, loss = call(host, "InvertEditDragDiffusionLoRA", model=model, steps=0, **args)
    assert loss["loss"] == [] and all(float(v.abs().max()) == 0 for k, v in lora.items() if "lora_up" in k)
    alphas = [k for k in lora if k.endswith(".alpha")]
    assert alphas and all(k.endswith(("to_q.alpha", "to_k.alpha", "to_v.alpha", "to_out.0.alpha")) for k in alphas)
    assert all(v.shape[0] == 4 for k, v in lora.items() if "lora_down" in k)
    inv = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=4,
               scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    back = call(host, "InvertEditDDIMInvert", model=same, latent=latent, positive=pos, steps=4,
                scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    assert torch.equal(inv[1]["samples"], back[1]["samples"])
    trained, lora, loss = call(host, "InvertEditDragDiffusionLoRA", model=model, steps=3, **args)
    assert len(loss["loss"]) == 3 and all(math.isfinite(v) for v in loss["loss"])
    assert any(float(v.abs().max()) > 0 for k, v in lora.items() if "lora_up" in k)


def test_equal_latents_denoise_to_equal_rows_and_the_drag_moves_the_latent(host, tiny):
    """The reference attention gives the dragged row the original row's keys and values: with the original
    latent in both rows (no optimisation steps) the rows stay equal, as the code's pair would."""
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 5}
    inversion = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=10,
                     scheduler="ddim_uniform", start_at_step=3, cfg=1.0)[0]
    args = dict(model=model, positive=pos, inversion=inversion, points="20,20 -> 40,24", lr=0.01, lam=0.1, r_m=1,
                r_p=3, feature_idx=1, start_step=0, start_layer=0)
    m, pair, text = call(host, "InvertEditDragDiffusion", n_pix_step=0, **args)
    assert torch.equal(pair["samples"][0], pair["samples"][1]) and text == "20,20 -> 40,24"
    out = call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=10, cfg=1.0,
               sampler_name="ddim", scheduler="ddim_uniform", positive=pos, negative=pos, latent_image=pair,
               start_at_step=3, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    _, dragged, _ = call(host, "InvertEditDragDiffusion", n_pix_step=3, **args)
    assert torch.equal(dragged["samples"][0], pair["samples"][0])
    assert float((dragged["samples"][1] - pair["samples"][0]).abs().max()) > 1e-3


@pytest.fixture(scope="module")
def parity(host, tiny, tmp_path_factory, reference_copy, reference_run, skip_loudly):
    """Our drag and final denoising, and the authors', on the tiny SD1.5-layout model (its decoder level 3, the
    code's), a 32 x 32 latent (256 px, a 128 x 128 grid: the code's sizes follow the image's) and 10 DDIM steps
    inverted to step 3 (strength 0.7; the code's 50 steps to 15 cost five times as much on a CPU, for the same
    arithmetic)."""
    tmp = tmp_path_factory.mktemp("drag_diffusion")
    checkout = reference_copy(tmp / "code", "DRAGDIFFUSION", "Yujun-Shi/DragDiffusion", ("drag_pipeline.py", "utils"),
                              "utils/drag_utils.py")
    if checkout is None:
        skip_loudly("DRAGDIFFUSION PARITY SKIPPED: the authors' code was not found (set DRAGDIFFUSION_PATH to a "
                    "checkout of github.com/Yujun-Shi/DragDiffusion, or fetch it)")
    models = tiny("sd1-layout")
    model, clip, _ = models
    pos = encode(host, clip, PROMPT)
    raw = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(2)) * 4
    inversion = call(host, "InvertEditDDIMInvert", model=model, latent={"samples": raw}, positive=pos, steps=10,
                     scheduler="ddim_uniform", start_at_step=3, cfg=1.0)[0]
    mask = torch.zeros(1, 256, 256)
    mask[:, 60:180, 60:190] = 1.0
    settings = dict(steps=10, start=3, feature_idx=3, r_m=1, r_p=3, lam=0.1, lr=0.01, n_pix_step=6, sup=(128, 128),
                    start_step=0, start_layer=6)
    m, pair, text = call(host, "InvertEditDragDiffusion", model=model, positive=pos, inversion=inversion,
                         points="100,100 -> 120,110; 150,130 -> 145,150", n_pix_step=settings["n_pix_step"],
                         lr=0.01, lam=0.1, r_m=1, r_p=3, feature_idx=3, start_step=0, start_layer=6, mask=mask)
    sigma = float(inversion.sigmas[3])
    lift = math.sqrt(1 + sigma ** 2)
    z = model.model.process_latent_in(inversion.latent) / lift
    job_mask = F.interpolate(mask[None], (128, 128), mode="nearest")
    theirs = reference_run(RUNNER, checkout, tmp, models, embedding=pos[0][0].float(), init_code=z, mask=job_mask,
                           handles=[[50.0, 50.0], [65.0, 75.0]], targets=[[55.0, 60.0], [75.0, 72.0]],
                           settings=settings, final=True)
    ours_z = model.model.process_latent_in(pair["samples"][1:]) / lift
    final = call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=10, cfg=1.0,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=pos, negative=pos, latent_image=pair,
                 start_at_step=3, end_at_step=9, return_with_leftover_noise="enable")[0]["samples"]
    ours_final = model.model.process_latent_in(final) / math.sqrt(1 + float(inversion.sigmas[9]) ** 2)
    return dict(z=z, ours=ours_z, text=text, theirs=theirs, ours_final=ours_final)


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


def test_the_drag_matches_the_authors_code(parity):
    theirs, ours = parity["theirs"], parity["ours"]
    err = relative(ours, theirs["updated"])
    moved = relative(theirs["updated"], parity["z"])
    tracked = "; ".join(f"{2 * h[1]:.0f},{2 * h[0]:.0f}" for h in theirs["handles"])
    print(f"\nDragDiffusion vs Yujun-Shi/DragDiffusion drag_diffusion_update (6 steps, 2 handles, mask, t = "
          f"{theirs['t']}): updated latent relative error {err:.2e} (the drag moved it by {moved:.2e}); tracked handles "
          f"theirs {tracked}, ours {parity['text']}")
    assert theirs["t"] == 601
    assert moved > 10 * err
    assert err <= TOLERANCE
    assert [p.split(" -> ")[0] for p in parity["text"].split("; ")] == tracked.split("; ")


def test_the_final_denoising_matches_the_authors_pipeline(parity):
    theirs = parity["theirs"]["final"][-2]   # the latent at timestep 1 (their last step goes to abar_0, ours to 0)
    err = relative(parity["ours_final"], theirs)
    print(f"\nDragDiffusion final denoising (pair, mutual self-attention from layer 6) vs the authors' pipeline: "
          f"relative error {err:.2e} at timestep 1")
    assert err <= TOLERANCE
