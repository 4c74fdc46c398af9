"""EDICT: exact inversion with two coupled sequences (Wallace et al., "EDICT: Exact Diffusion
Inversion via Coupled Transformations", 2023).

Two latents ``x`` and ``y`` (both the source at the start) are denoised in turns, each with
the noise predicted from the other, then mixed with weight ``p`` (the paper's 0.93). Every
operation is affine in the latent being updated, so a step can be undone exactly by running
its operations backwards with the same noise predictions: inversion then sampling returns the
source up to float round-off, at any guidance scale, for the price of two UNet calls a step.

In the host's sigma space the DDIM update of a latent ``z`` at ``sigma`` towards
``sigma_next`` is ``z + (sigma_next - sigma) * eps``. The noise of a latent that sits at
another level than the one the UNet is asked about is evaluated on the same DDPM latent
(``x / sqrt(1 + sigma^2)``), as in the paper's formulation.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...inversion.contract import Inverted
from ...inversion.ddim import Denoiser, StepCallback, eps_at


def _eps(denoise: Denoiser, z: torch.Tensor, level: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """The noise of ``z`` (a host latent at sigma ``level``) as the UNet sees it at sigma ``at``."""
    if level is not at:   # the same sigma: no rescale (sqrt(1) = 1 exactly either way; no device read)
        z = z * torch.sqrt((1 + at ** 2) / (1 + level ** 2))
    return eps_at(denoise, z, at)


def edict_step(denoise: Denoiser, x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor,
               sigma_next: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One EDICT denoising step from ``sigma`` down to ``sigma_next``."""
    d = sigma_next - sigma
    x_mid = x + d * _eps(denoise, y, sigma, sigma)
    y_mid = y + d * _eps(denoise, x_mid, sigma_next, sigma)
    x_new = p * x_mid + (1 - p) * y_mid
    y_new = p * y_mid + (1 - p) * x_new
    return x_new, y_new


def edict_unstep(denoise: Denoiser, x_new: torch.Tensor, y_new: torch.Tensor, sigma: torch.Tensor,
                 sigma_next: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact inverse of ``edict_step``: from the latents at ``sigma_next`` back up to ``sigma``."""
    d = sigma_next - sigma
    y_mid = (y_new - (1 - p) * x_new) / p
    x_mid = (x_new - (1 - p) * y_mid) / p
    y = y_mid - d * _eps(denoise, x_mid, sigma_next, sigma)
    x = x_mid - d * _eps(denoise, y, sigma, sigma)
    return x, y


def edict_invert(denoise: Denoiser, x0: torch.Tensor, sigmas: torch.Tensor,
                 callback: Optional[StepCallback] = None, *, p: float = 0.93) -> Inverted:
    """Invert ``x0`` along a descending schedule (``sigmas[-1]`` is the source's level, usually 0).
    Returns the first sequence's trajectory in sampling order and, as the clue ``edict.y``,
    the second sequence's latent at ``sigmas[0]``."""
    x, y = x0, x0
    xs = [x]
    total = len(sigmas) - 1
    for n, i in enumerate(reversed(range(total))):
        x, y = edict_unstep(denoise, x, y, sigmas[i], sigmas[i + 1], p)
        xs.append(x)
        if callback is not None:
            callback(n, total, x)
    return Inverted(torch.stack(xs[::-1]), {"edict.y": y})


def edict_sample(denoise: Denoiser, x: torch.Tensor, y: torch.Tensor, sigmas: torch.Tensor, p: float = 0.93,
                 callback: Optional[StepCallback] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoise the coupled pair along a descending schedule; returns ``(x, y)`` at ``sigmas[-1]``."""
    total = len(sigmas) - 1
    for i in range(total):
        x, y = edict_step(denoise, x, y, sigmas[i], sigmas[i + 1], p)
        if callback is not None:
            callback(i, total, x)
    return x, y
