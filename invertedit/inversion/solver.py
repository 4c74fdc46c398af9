"""The deterministic DDIM / Euler step in the host's parameterisation, the one step every
inversion, sampler loop and guider of the pack takes (issue 25: one step function per solver).

The host samples ``x = x0 + sigma * eps`` (``comfy/model_sampling.py``); its ``ddim`` and
``euler`` samplers step from ``sigma`` to ``sigma_next`` as ``x' = d + (x - d) * sigma'/sigma``
with ``d`` the denoised prediction, which is the same step as ``x' = x + (sigma' - sigma) * eps``
with ``eps = (x - d) / sigma``. Run on ascending sigmas, it is DDIM inversion.
"""
from __future__ import annotations

import torch


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The host's ``ddim``/``euler`` step in sigma space, from the denoised prediction."""
    return denoised + (x - denoised) * (sigma_next / sigma)


def eps_step(x: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The same step from the noise prediction: ``x + (sigma_next - sigma) * eps`` (either direction)."""
    return x + (sigma_next - sigma) * eps


def denoised_onto(x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The ``denoised`` for which the step from ``x`` at ``sigma`` lands on ``target`` at
    ``sigma_next`` (< sigma): the step solved for its prediction.

    Direct Inversion (Ju et al., "PnP Inversion: Boosting Diffusion-based Editing with 3 Lines of
    Code", 2024) adds, at every step, the offset between the inversion trajectory and where the
    guided step landed to the source branch only; for this step that is the same as replacing the
    source row's ``d`` by this one, so the source is reconstructed exactly, the target branch sees
    an undistorted source, and nothing is stored per step beyond the trajectory."""
    ratio = sigma_next / sigma
    return (target - x * ratio) / (1 - ratio)


def at_next_level(x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """``x`` (at ``sigma``) as the model's input at ``sigma_next``: the papers' DDIM inversion
    evaluates the current latent at the next timestep, which in the host's space rescales it by
    ``sqrt((1 + sigma_next^2) / (1 + sigma^2))`` (the model sees ``x / sqrt(1 + sigma^2)``)."""
    return x * torch.sqrt((1 + sigma_next ** 2) / (1 + sigma ** 2))
