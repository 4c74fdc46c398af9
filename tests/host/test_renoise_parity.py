"""Fixed-Point Invert's parity with ReNoise's official code (garibida/ReNoise-Inversion,
``src/renoise_inversion.py``'s ``inversion_step`` and ``src/schedulers/ddim_scheduler.py``'s
``MyDDIMScheduler.inv_step``), on the same tiny weights through diffusers (tests/diffusers_bridge.py).

The reference is taken from its public repository at test time (``RENOISE_PATH``: a checkout;
else the snapshot the ``fetch`` tool leaves at ``RENOISE_MIRROR``, default
/work/.mirror/garibida+ReNoise-Inversion/repo), never committed; without it the test is skipped
with one loud line. Its inversion step is run unchanged, driven as its ``SDDDIMPipeline`` drives
it (one call per timestep, in ascending order), with:
- the scheduler configured like the host's ``ddim_uniform`` (``steps_offset=1``,
  ``set_alpha_to_one=True``: the inversion starts from the image at sigma 0);
- its ``RunConfig`` defaults (9 renoise steps, averaging ranges (8, 10) and (0, 5) below
  timestep 250, at most 5 renoise steps there), with noise regularisation and noise correction
  off: the pack leaves both out (regularisation: see ``techniques/fixed_point/iteration.py``; correction
  is for stochastic schedulers, and its DDIM scheduler has none);
- for v-prediction (which its scheduler refuses), the UNet's v converted to eps at the timestep
  the UNet saw, the host's rule (as in test_ddim_parity.py);
- ``add_noise`` the identity, as its ``get_pipes`` sets it for SD models.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from workshop.headless.calls import call, encode

pytest.importorskip("diffusers")

PROMPT = "a red circle on a blue background"
TOLERANCE = 1e-5   # relative: max |ours - reference| / max |reference|, over the whole trajectory (measured <= 6e-7)
# id: (family, steps, cfg, ReNoise's num_renoise_steps, our iterations, our average). At 4 steps the
# defaults converge so well on the tiny models that averaging changes the result by 3e-6 only; the
# cases with 1 and 3 renoise steps are the ones that tell averaging rules apart (averaging the last
# 2 instead of ReNoise's last 1 at 1 renoise step: 6e-2; at 10 steps, the rule below timestep 250
# left out: 1.3e-3; at 3 renoise steps: 5e-3 and 7e-4).
CASES = {
    "sd1 defaults": ("sd1", 4, 1.0, 9, 9, 2),
    "sd1 cfg 3": ("sd1", 4, 3.0, 9, 9, 2),
    # its SD example's setting (1 renoise step): its (8, 10) range then averages nothing, i.e. the
    # last estimate; below timestep 250 (3 of the 10 steps) both estimates are averaged
    "sd1 1 renoise step, 10 steps": ("sd1", 10, 1.0, 1, 1, 1),
    "sd1 3 renoise steps, 10 steps": ("sd1", 10, 1.0, 3, 3, 1),
    "sd2-v defaults": ("sd2-v", 4, 1.0, 9, 9, 2),
    "sdxl defaults": ("sdxl", 4, 1.0, 9, 9, 2),
}


def reference_modules(reference_copy, tmp: Path):
    """ReNoise's ``src.config``, ``src.renoise_inversion`` and ``src.schedulers.ddim_scheduler``
    from a copy of its ``src`` folder (given empty ``__init__.py`` files so that no other ``src``
    on the path is taken for it), or None."""
    if reference_copy(tmp, "RENOISE", "garibida/ReNoise-Inversion", ("src",), "src/renoise_inversion.py") is None:
        return None
    for package in ("src", "src/schedulers", "src/utils", "src/pipes", "src/metrics"):
        if (tmp / package).is_dir():
            (tmp / package / "__init__.py").touch()
    saved = {k: v for k, v in sys.modules.items() if k == "src" or k.startswith("src.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(tmp))
    try:
        return SimpleNamespace(config=importlib.import_module("src.config"),
                               renoise=importlib.import_module("src.renoise_inversion"),
                               scheduler=importlib.import_module("src.schedulers.ddim_scheduler"))
    finally:
        sys.path.remove(str(tmp))
        for k in [k for k in sys.modules if k == "src" or k.startswith("src.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly, reference_copy):
    modules = reference_modules(reference_copy, tmp_path_factory.mktemp("renoise"))
    if modules is None:
        skip_loudly("RENOISE PARITY SKIPPED: ReNoise's code was not found (set RENOISE_PATH to a checkout of "
                    "github.com/garibida/ReNoise-Inversion, or fetch it to /work/.mirror/garibida+ReNoise-Inversion)")
    return modules


class EpsUNet(torch.nn.Module):
    """The diffusers UNet answering eps: v converted at the timestep the UNet saw (the host's rule)."""

    def __init__(self, unet, alphas_cumprod: torch.Tensor, v: bool):
        super().__init__()
        self.unet, self.alphas_cumprod, self.v = unet, alphas_cumprod, v

    def forward(self, z, t, encoder_hidden_states=None, added_cond_kwargs=None, return_dict=False, **kwargs):
        out = self.unet(z, t, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs,
                        return_dict=False)[0]
        if self.v:
            a = self.alphas_cumprod[int(t)]
            out = a.sqrt() * out + (1 - a).sqrt() * z
        return (out,)


def reference_inversion(ref, unet, family: str, z0: torch.Tensor, pos, neg, steps: int, cfg: float,
                        renoise_steps: int) -> list:
    """ReNoise's inversion of ``z0`` (diffusers latent scale): the latent after each step."""
    scheduler = ref.scheduler.MyDDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True,
                                              steps_offset=1, prediction_type="epsilon")
    scheduler.set_timesteps(steps)
    scheduler.add_noise = lambda latents, noise, timestep: latents      # as its get_pipes sets it for SD models
    guided = cfg > 1.0
    conds = [neg, pos] if guided else [pos]
    embeds = torch.cat([c[0][0] for c in conds])
    added = None
    if family == "sdxl":
        s = float(8 * z0.shape[-1])   # the host's SDXL size conditioning inside sampling
        added = {"text_embeds": torch.cat([c[0][1]["pooled_output"] for c in conds]),
                 "time_ids": torch.tensor([[s, s, 0.0, 0.0, s, s]]).repeat(len(conds), 1)}
    pipe = SimpleNamespace(
        cfg=ref.config.RunConfig(num_inversion_steps=steps, num_inference_steps=steps, guidance_scale=cfg,
                                 num_renoise_steps=renoise_steps, noise_regularization_num_reg_steps=0,
                                 perform_noise_correction=False),
        scheduler=scheduler, unet=EpsUNet(unet, scheduler.alphas_cumprod, family == "sd2-v"),
        z_0=z0, noise=torch.zeros_like(z0), do_classifier_free_guidance=guided, guidance_scale=cfg,
        cross_attention_kwargs=None)
    latents, out = z0, []
    with torch.no_grad():
        for t in reversed(scheduler.timesteps):
            latents = ref.renoise.inversion_step(pipe, latents, t, embeds, added, num_renoise_steps=renoise_steps)
            out.append(latents)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_point_invert_matches_renoise(host, tiny, unets, reference, case):
    family, steps, cfg, renoise_steps, iterations, average = CASES[case]
    model, clip, _ = tiny(family)
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3)) * 5}
    inv, _, _ = call(host, "InvertEditFixedPointInvert", model=model, latent=src, positive=pos, negative=neg,
                     steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=cfg, iterations=iterations,
                     average=average, low_noise_rule=True, anderson=0)
    z0 = src["samples"] * model.model.latent_format.scale_factor
    theirs = torch.stack(reference_inversion(reference, unets(family), family, z0, pos, neg, steps, cfg,
                                              renoise_steps))
    sigmas = inv.sigmas.flip(0)[1:].reshape(-1, 1, 1, 1, 1)
    ours = inv.trajectory.flip(0)[1:] / (1 + sigmas ** 2).sqrt()     # sampler space -> diffusers latents
    err = float((ours - theirs).abs().max() / theirs.abs().max())
    moved = float((theirs[-1] - z0).abs().max() / theirs.abs().max())
    print(f"\n[{case}] {steps}-step inversion vs ReNoise's inversion_step: max relative difference {err:.2e} "
          f"(evaluations {inv.settings['model_evaluations']})")
    assert moved > 0.1            # the inversion went somewhere: the comparison is not of two copies of z0
    assert err < TOLERANCE, err
