"""Direct inversion (Ju et al., "PnP Inversion: Boosting Diffusion-based Editing with 3 Lines
of Code", 2024): keep the source branch on the inversion trajectory.

Under classifier-free guidance the sampler's step from the inverted latent drifts away from
the DDIM inversion trajectory. Direct inversion adds, at every step, the offset between the
trajectory and where the guided step landed, to the source branch only, so the source is
reconstructed exactly while the target branch (and any attention it borrows from the source)
sees an undistorted source. For the host's deterministic DDIM/Euler step
``x' = d + (x - d) * sigma' / sigma`` this is the same as replacing the source row's
``d`` by the one whose step lands on the trajectory point: nothing is stored per step
beyond the trajectory, and no extra UNet call is made.
"""
from __future__ import annotations

import torch


def denoised_onto(x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The ``denoised`` for which the DDIM/Euler step from ``x`` at ``sigma`` lands on ``target``
    at ``sigma_next`` (< sigma)."""
    ratio = sigma_next / sigma
    return (target - x * ratio) / (1 - ratio)


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The host's ``ddim``/``euler`` step in sigma space."""
    return denoised + (x - denoised) * (sigma_next / sigma)
