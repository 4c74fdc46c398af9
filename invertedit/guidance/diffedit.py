"""DiffEdit's mask (Couairon et al., "DiffEdit: Diffusion-based semantic image editing with mask
guidance", 2023): where the noise predicted under the target prompt differs from the noise
predicted under the source prompt, for the source image noised to half strength, the edit
has to happen. Paper defaults: strength 0.5, 10 noise samples, binarised at 0.5 after
normalising the averaged difference to [0, 1].
"""
from __future__ import annotations

from typing import Callable

import torch

EpsPair = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]   # (x, sigma) -> (eps_src, eps_tgt)


def diffedit_mask(eps_pair: EpsPair, x0: torch.Tensor, sigma: torch.Tensor, noises: torch.Tensor,
                  threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(binary mask ``[B, 1, H, W]``, the normalised soft map it was cut from): the mean over
    ``noises`` of ``|eps_tgt - eps_src|`` averaged over channels, at ``x0 + sigma * noise``."""
    total = torch.zeros_like(x0[:, :1])
    for noise in noises:
        eps_src, eps_tgt = eps_pair(x0 + sigma * noise, sigma)
        total += (eps_tgt - eps_src).abs().mean(dim=1, keepdim=True)
    soft = total / len(noises)
    lo = soft.amin(dim=(2, 3), keepdim=True)
    hi = soft.amax(dim=(2, 3), keepdim=True)
    soft = (soft - lo) / (hi - lo).clamp_min(1e-12)
    return (soft > threshold).float(), soft
