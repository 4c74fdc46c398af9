"""DragonDiffusion / DiffEditor in the host (``invertedit/techniques/dragon_diffusion``): the guidance at one
step against the authors' ``Sampler.guidance_move`` run unchanged on the same tiny weights (SD1.5's layout), the
guider's model calls per step, and its refusals of a run it cannot retrace."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

RUNNER = Path(__file__).resolve().parents[1] / "reference" / "dragon_diffusion_runner.py"
PROMPT = "a red circle and a blue square on a green background"
SIZE, BOX, MOVE = 512, (100, 120, 260, 280), (40.0, -24.0)   # the object's box (x0, y0, x1, y1), its move
WEIGHTS = {"w_edit": 4.0, "w_content": 6.0, "w_contrast": 0.2, "w_inpaint": 0.8}
ENERGY = 0.5   # the demo's slider (x1e3)
T = 601        # the timestep of the compared step
TOLERANCE = 2e-3


def _mask() -> torch.Tensor:
    m = torch.zeros(SIZE, SIZE)
    x0, y0, x1, y1 = BOX
    m[y0:y1, x0:x1] = 1
    return m


def _encode(clip, text: str) -> list:
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def _nodes(host):
    return host.pack.techniques.dragon_diffusion.nodes


def _inversion(host, model, positive, sigmas: torch.Tensor, trajectory: torch.Tensor):
    """A DDIM INVERSION record of ``trajectory`` (sampler space, ``[steps + 1, 1, 4, h, w]``) over ``sigmas``."""
    pack = host.pack
    latent = model.model.process_latent_out(trajectory[0])
    return pack.inversion.record.Inversion(method="ddim", sigmas=sigmas, start_step=0, trajectory=trajectory,
                                           latent=latent, settings={"steps": len(sigmas) - 1, "scheduler": "test"},
                                           fingerprint=pack.hostkit.inverters.inversion_fingerprint(model, positive))


def _one_step(host, model, clip, x: torch.Tensor, x_ref: torch.Tensor, sigma: torch.Tensor, **settings):
    """Our guider for one step at ``sigma`` (to 0) from ``x`` with the inversion's latent ``x_ref``: (the
    guidance it added to the predicted noise, the number of model calls)."""
    import comfy.samplers

    positive, negative = _encode(clip, PROMPT), _encode(clip, "")
    sigmas = torch.stack([sigma, torch.zeros_like(sigma)]).float()
    inversion = _inversion(host, model, positive, sigmas, torch.stack([x_ref, x_ref * 0]))
    args = dict(mask=_mask(), dx=MOVE[0], dy=MOVE[1], scale=1.0, cfg=4.0, energy_scale=ENERGY, **WEIGHTS,
                sde_strength=0.4, seed=42, variant="DiffEditor")
    args.update(settings)
    guider = _nodes(host).DragonDiffusionMove.execute(model, positive, negative, inversion, **args).result[0]
    seen, calls = [], []
    energy_guidance = guider.energy_guidance
    guider.energy_guidance = lambda *a: seen.append(energy_guidance(*a)) or seen[-1]
    guider.model_patcher.add_wrapper_with_key(
        __import__("comfy.patcher_extension").patcher_extension.WrappersMP.APPLY_MODEL, "count",
        lambda executor, *a, **k: calls.append(a[0].shape[0]) or executor(*a, **k))
    latent = model.model.process_latent_out(x)
    guider.sample(torch.zeros_like(latent), latent, comfy.samplers.sampler_object("ddim"), sigmas, seed=0,
                  disable_pbar=True)
    return (seen[0] if seen else None), calls


@pytest.fixture(scope="module")
def parity(host, tiny, tmp_path_factory, reference_copy, reference_run, skip_loudly):
    tmp = tmp_path_factory.mktemp("dragon")
    checkout = reference_copy(tmp / "code", "DRAGONDIFFUSION", "MC-E/DragonDiffusion", ("src",),
                              "src/models/Sampler.py")
    if checkout is None:
        skip_loudly("DRAGONDIFFUSION PARITY SKIPPED: the authors' code was not found (set DRAGONDIFFUSION_PATH to a "
                    "checkout of github.com/MC-E/DragonDiffusion, or fetch it)")
    model, clip, vae = tiny("sd1-layout")
    g = torch.Generator().manual_seed(0)
    z, z_ref = torch.randn(1, 4, 64, 64, generator=g), torch.randn(1, 4, 64, 64, generator=g)
    z = 0.7 * z_ref + 0.3 * z   # an edited latent near the inversion's
    text = _encode(clip, PROMPT)[0][0]
    mask = (_mask().numpy()[:, :, None].repeat(3, 2) * 255).astype(np.uint8)
    out = reference_run(RUNNER, checkout, tmp, (model, clip, vae), mask=mask, dx=MOVE[0], dy=MOVE[1],
                        resize_scale=1.0, **WEIGHTS, energy_scale=ENERGY * 1e3, latent=z, latent_ref=z_ref, t=T,
                        text=text)
    return z, z_ref, out


def test_the_guidance_matches_the_authors_guidance_move(host, tiny, parity):
    """One step's guidance (the energies' gradients, masked and scaled as ``guidance_move`` returns them) from the
    host's UNet, against the authors' code with their feature estimator on the same weights; the masks are theirs
    exactly. The rest of their ``Sampler.edit`` (the memory bank, the step) needs their UNet fork, which the
    installed diffusers cannot load: the step is checked against their formulas in
    tests/pure/test_dragon_diffusion_math.py."""
    model, clip, _ = tiny("sd1-layout")
    z, z_ref, ref = parity
    sampling = model.get_model_object("model_sampling")
    sigma = sampling.sigmas[T].float()
    to_x = (1 + sigma ** 2).sqrt()
    ours, _ = _one_step(host, model, clip, z * to_x, z_ref * to_x, sigma)
    theirs = ref["guidance"]
    energy = host.pack.techniques.dragon_diffusion.energy
    masks = energy.move_masks(_mask(), *MOVE, 1.0, (128, 128))
    assert torch.equal(masks.current, ref["mask_cur"][0, 0]) and torch.equal(masks.other, ref["mask_other"][0, 0])
    assert torch.equal(masks.non_overlap, ref["mask_non_overlap"][0, 0])
    err = float((ours - theirs).abs().max() / theirs.abs().max())
    print(f"\nDragonDiffusion guidance_move vs MC-E/DragonDiffusion at t={T}: relative error {err:.2e} (max abs "
          f"{float((ours - theirs).abs().max()):.2e}, guidance up to {float(theirs.abs().max()):.3g}); Sampler.edit "
          f"not run: its UNet fork needs diffusers.models.cross_attention (diffusers 0.1x)")
    assert err <= TOLERANCE


def test_a_guided_step_with_the_memory_bank_makes_three_model_calls(host, tiny):
    """Bank (one row), the CFG pair (two rows, one call), the features (the edited latent and the inversion's, one
    call, stopped at the decoder's last read feature); the backward passes are not calls."""
    model, clip, _ = tiny("sd1-layout")
    g = torch.Generator().manual_seed(1)
    x, x_ref = torch.randn(1, 4, 64, 64, generator=g) * 3, torch.randn(1, 4, 64, 64, generator=g) * 3
    sigma = model.get_model_object("model_sampling").sigmas[T].float()
    guide, calls = _one_step(host, model, clip, x, x_ref, sigma)
    assert calls == [1, 2, 2] and guide is not None and torch.isfinite(guide).all()
    guide, calls = _one_step(host, model, clip, x, x_ref, sigma, energy_scale=0.0)
    assert calls == [1, 2] and guide is None


def _tiny_run(host, tiny, node: str, steps: int = 10, **inputs):
    """A whole run of ``node``'s GUIDER on the tiny SD1 model's DDIM inversion (``steps``, an 8x8 latent: 64 px),
    through the stock nodes: the edited latent and the start latent."""
    from workshop.headless.calls import call

    model, clip, _ = tiny("sd1")
    pos, neg = _encode(clip, PROMPT), _encode(clip, "")
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, _, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=steps,
                          scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    settings = dict(cfg=4.0, w_edit=4.0, w_content=6.0, sde_strength=0.4, seed=42, variant="DiffEditor")
    settings.update(inputs)
    guider, start = call(host, node, model=model, positive=pos, negative=neg, inversion=inv, **settings)[:2]
    out = call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
               sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas, latent_image=start)[0]
    return out["samples"], start["samples"], inv


def test_move_and_drag_run_a_whole_schedule_through_the_stock_sampler(host, tiny):
    """Both nodes run a whole schedule and return a finite latent (move at 15 steps: the bank from step 2, guided and
    unguided steps, the regional SDE at steps 4-5, the time travel at step 8; drag at 6); drag's start holds each
    handle's latent cells at its target."""
    mask = torch.zeros(1, 64, 64)
    mask[:, 8:24, 8:24] = 1
    moved, start, inv = _tiny_run(host, tiny, "InvertEditDragonDiffusionMove", 15, mask=mask, dx=16.0, dy=8.0, scale=1.0,
                                  energy_scale=0.5, w_contrast=0.2, w_inpaint=0.8)
    assert torch.isfinite(moved).all() and not torch.equal(start, inv.latent)
    region = torch.zeros(1, 64, 64)
    region[:, 0:40, 0:40] = 1
    dragged, start, inv = _tiny_run(host, tiny, "InvertEditDragonDiffusionDrag", 6, mask=region, points="12,12 -> 28,20",
                                    energy_scale=2.0, w_inpaint=0.2)
    assert torch.isfinite(dragged).all()
    assert torch.equal(start[..., 1:4, 2:5], inv.latent[..., 0:3, 0:3])   # the handle's cells copied to the target
