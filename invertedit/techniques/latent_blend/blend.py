"""Latent blending (Avrahami et al., "Blended Latent Diffusion", 2023; Prompt-to-Prompt's
LocalBlend): on a (source, target) pair, the target follows the source outside a mask.

Blended Latent Diffusion mixes the latents after every step. Both rows start from the same
inverted latent, and the host's DDIM/Euler step is elementwise in (latent, prediction), so
mixing the rows' predictions (x0 estimates) instead keeps the target's latent equal to the
source's outside a hard mask at every step, bit for bit: identical inputs, identical
arithmetic. When blending starts later than the first step, the first blended step puts the
target onto the mixed latent (the step's prediction chosen to land there, to float
precision), and prediction mixing keeps it there.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...inversion.solver import denoised_onto, euler_step


@dataclass(frozen=True)
class BlendSchedule:
    start: float = 0.0   # fraction of the steps before blending starts (Prompt-to-Prompt's local blend: 0.2)
    end: float = 1.0     # fraction after which blending stops (Blended Latent Diffusion: 0.75)

    def blends(self, step: int, steps: int) -> bool:
        return self.start * steps <= step < self.end * steps

    def first(self, step: int, steps: int) -> bool:
        return self.blends(step, steps) and (step == 0 or not self.blends(step - 1, steps))


def blend_predictions(x: torch.Tensor, denoised: torch.Tensor, mask: torch.Tensor, sigma: torch.Tensor,
                      sigma_next: torch.Tensor, align: bool) -> torch.Tensor:
    """Rows ``[0]`` source, ``[1]`` target of a pair. The target's prediction becomes
    ``mask * own + (1 - mask) * source's``; with ``align`` (the first blended step) it is the
    prediction whose step lands on the blend of both rows' next latents. Returns the pair."""
    out = denoised.clone()
    m = mask.to(denoised)
    if align:
        nxt_s, nxt_t = (euler_step(x[i:i + 1], denoised[i:i + 1], sigma, sigma_next) for i in (0, 1))
        out[1:2] = denoised_onto(x[1:2], sigma, sigma_next, m * nxt_t + (1 - m) * nxt_s)
    else:
        out[1:2] = m * denoised[1:2] + (1 - m) * denoised[0:1]
    return out
