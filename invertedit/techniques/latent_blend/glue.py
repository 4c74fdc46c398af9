"""Latent Blend inside the host (math in ``blend.py``): a MASK at latent
resolution and the post-CFG blend of a source/target pair."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...hostkit.errors import NodeInputError
from ...hostkit.steps import post_cfg_step
from .blend import BlendSchedule, blend_predictions


NAME = "Latent Blend"

def latent_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A MASK of any size as ``[1, 1, h, w]`` at latent resolution: nearest for a hard (0/1)
    mask, so it stays hard; area-averaged for a soft one."""
    m = mask.float()
    m = m.reshape(-1, *m.shape[-2:])[:1, None]
    hard = bool(torch.all((m == 0) | (m == 1)))
    return F.interpolate(m, size=size, mode="nearest" if hard else "area").clamp(0, 1)


class LatentBlendPatch:
    """Post-CFG function: on the blended steps the target row's prediction follows the source's
    outside the mask."""

    def __init__(self, mask: torch.Tensor, schedule: BlendSchedule):
        self.mask, self.schedule = mask, schedule

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        if x.shape[0] != 2:
            raise NodeInputError(NAME, f"the sampler runs a batch of {x.shape[0]}; Latent Blend works on a source/target "
                                       f"pair (the LATENT and CONDITIONING pairs of Attention Inject, MasaCtrl or Plug-and-Play).")
        step, steps = post_cfg_step(args)
        if not self.schedule.blends(step, steps):
            return denoised
        run = args["model_options"]["transformer_options"]["sample_sigmas"]
        mask = self.mask if self.mask.shape[-2:] == x.shape[-2:] else latent_mask(self.mask, tuple(x.shape[-2:]))
        return blend_predictions(x, denoised, mask.to(x.device), sigma[0], run[step + 1].to(x),
                                 align=self.schedule.first(step, steps) and step > 0)
