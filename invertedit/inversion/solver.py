"""The deterministic DDIM / Euler step in the host's parameterisation, the one step every
inversion, sampler loop and guider of the pack takes (issue 25: one step function per solver).

The host samples eps/v models as ``x = x0 + sigma * eps`` and flow models as
``x = (1 - sigma) * x0 + sigma * noise`` (``comfy/model_sampling.py``; ``parameterisation.py``); its
``ddim`` and ``euler`` samplers step from ``sigma`` to ``sigma_next`` as
``x' = d + (x - d) * sigma'/sigma`` with ``d`` the denoised prediction, which is the same step as
``x' = x + (sigma' - sigma) * eps`` with ``eps = (x - d) / sigma`` (the noise of an eps/v model, the
velocity ``noise - x0`` of a flow model): one formula for every parameterisation. Run on ascending
sigmas, it is DDIM inversion.
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

