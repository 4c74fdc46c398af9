"""Edit-friendly DDPM inversion (Huberman-Spiegelglas, Kulikov and Michaeli, "An Edit Friendly
DDPM Noise Space: Inversion and Manipulations", 2024), the inversion LEDITS++ builds on.

Instead of one deterministic path, the source is noised independently at every level of the
schedule (``x_i = x0 + sigma_i * n_i`` in the host's space, fresh ``n_i`` each time); then,
walking down, each DDPM step's noise is solved for so that the stochastic sampler from
``x_i`` lands exactly on ``x_{i+1}``. Sampling with those noise maps (and the same prompt and
guidance) reproduces the source exactly; with another prompt the maps, which carry the
image's structure, make the edit keep it.

The step is the host's DDPM step (``ddpm`` sampler: posterior mean from the model's noise
prediction, ``alpha = alpha_bar / alpha_bar_prev``). We store each step's correction
``x_{i+1} - mean_i`` = noise map x posterior std; on the last step to sigma 0 the host's step
draws no noise, and the correction is the residual that keeps the reconstruction exact.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...inversion.contract import Inverted
from ...inversion.ddim import Denoiser, StepCallback


def ddpm_mean(denoise: Denoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The noise-free part of the host's DDPM step from ``sigma`` to ``sigma_next``, in host space."""
    eps = (x - denoise(x, sigma.reshape(1).expand(x.shape[0]))) / sigma
    abar, abar_next = 1 / (1 + sigma ** 2), 1 / (1 + sigma_next ** 2)
    alpha = abar / abar_next
    z = x / torch.sqrt(1 + sigma ** 2)
    mean = (z - (1 - alpha) / torch.sqrt(1 - abar) * eps) / torch.sqrt(alpha)
    return mean * torch.sqrt(1 + sigma_next ** 2)


def ddpm_std(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The posterior standard deviation of that step, in host space (0 for the step to sigma 0)."""
    abar, abar_next = 1 / (1 + sigma ** 2), 1 / (1 + sigma_next ** 2)
    alpha = abar / abar_next
    return torch.sqrt((1 - alpha) * (1 - abar_next) / (1 - abar)) * torch.sqrt(1 + sigma_next ** 2)


def edit_friendly_invert(denoise: Denoiser, x0: torch.Tensor, sigmas: torch.Tensor,
                         callback: Optional[StepCallback] = None, *, generator: torch.Generator) -> Inverted:
    """Along a descending schedule ending at the source's level: returns the noised latents as
    the trajectory (``[n + 1, ...]``, ``[0]`` is where sampling starts, ``[-1]`` the source) and
    the per-step corrections (``[n, ...]``) as the clue ``ddpm.corrections``."""
    n = len(sigmas) - 1
    # one draw per level, the least noisy first (the reference's order: same seed, same maps)
    noise = torch.stack([torch.randn(tuple(x0.shape), generator=generator, dtype=torch.float32)  # sampling-path-ok: seeded on the CPU as the host's noise is
                         for _ in range(n)]).flip(0).to(x0)
    levels = sigmas.tolist()  # sampling-path-ok: once per inversion
    xs = [x0 + sigmas[i] * noise[i] if levels[i] > 0 else x0 for i in range(n)] + [x0]
    corrections = []
    for i in range(n):
        corrections.append(xs[i + 1] - ddpm_mean(denoise, xs[i], sigmas[i], sigmas[i + 1]))
        if callback is not None:
            callback(i, n, xs[i + 1])
    return Inverted(torch.stack(xs), {"ddpm.corrections": torch.stack(corrections)})


def edit_friendly_sample(denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, corrections: torch.Tensor,
                         callback: Optional[StepCallback] = None) -> torch.Tensor:
    """DDPM sampling with stored corrections (broadcast over the batch: a source/target pair
    shares the source's noise maps)."""
    n = len(sigmas) - 1
    for i in range(n):
        x = ddpm_mean(denoise, x, sigmas[i], sigmas[i + 1]) + corrections[i]
        if callback is not None:
            callback(i, n, x)
    return x
