"""DiffEdit's mask (Couairon et al., "DiffEdit: Diffusion-based semantic image editing with mask
guidance", 2023): where the noise predicted under the target prompt differs from the noise
predicted under the source prompt, for the source image noised to half strength, the edit
has to happen. Paper defaults: strength 0.5, 10 noise samples, binarised at 0.5 after
removing extreme values and rescaling the averaged difference to [0, 1]. The extreme values are
removed as diffusers' ``StableDiffusionDiffEditPipeline.generate_mask`` does (the public code
of the method): the map is clamped at 3 times its mean (``mask_thresholding_ratio``) and
divided by that, so threshold 0.5 keeps what differs by more than 1.5 times the mean.
"""
from __future__ import annotations

from typing import Callable

import torch

EpsPair = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]   # (x, sigma) -> (eps_src, eps_tgt)


OUTLIER_RATIO = 3.0   # diffusers' mask_thresholding_ratio: the map is clamped at this many times its mean


def diffedit_mask(eps_pair: EpsPair, x0: torch.Tensor, sigma: torch.Tensor, noises: torch.Tensor,
                  threshold: float = 0.5, ratio: float = OUTLIER_RATIO) -> tuple[torch.Tensor, torch.Tensor]:
    """(binary mask ``[B, 1, H, W]``, the soft map in [0, 1] it was cut from): the mean over
    ``noises`` of ``|eps_tgt - eps_src|`` averaged over channels, at ``x0 + sigma * noise``,
    clamped at ``ratio`` times its mean (per image) and divided by that clamp."""
    total = torch.zeros_like(x0[:, :1])
    for noise in noises:
        eps_src, eps_tgt = eps_pair(x0 + sigma * noise, sigma)
        total += (eps_tgt - eps_src).abs().mean(dim=1, keepdim=True)
    soft = total / len(noises)
    clamp = soft.mean(dim=(2, 3), keepdim=True) * ratio
    soft = torch.minimum(soft, clamp) / clamp.clamp_min(1e-12)
    return (soft > threshold).float(), soft
