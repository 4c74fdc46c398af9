"""RF-Inversion (Rout et al. 2025, "Semantic Image Inversion and Editing using Rectified Stochastic
Differential Equations") controls the flow towards a target: the inversion towards a fixed noise
``y1`` with strength ``gamma`` (``rf_invert``), the sampling towards the source ``y0`` with ``eta``
(``rf_controlled``), as diffusers' community ``pipeline_flux_rf_inversion.py`` does. Time runs as in
``inversion/flow.py`` (``t`` the host's sigma: 0 at the image, 1 at the noise).
"""
from __future__ import annotations

from typing import Optional

import torch

from ...inversion.flow import StepCallback, Velocity, batch_time


def rf_invert(velocity: Velocity, y0: torch.Tensor, sigmas: torch.Tensor, gamma: float, y1: torch.Tensor,
              callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """RF-Inversion's controlled forward ODE (the community pipeline's ``invert``): from the image
    ``y0`` over ``len(sigmas) - 1`` steps, the model's velocity at ``t_i = i / len(sigmas)``, pulled
    towards ``y1`` by ``gamma`` (``u + gamma ((y1 - Y) / (1 - t_i) - u)``), each step as long as the
    sampling schedule's ``sigmas[i] - sigmas[i + 1]`` (``sigmas`` descending, the host's order, 0
    last). Returns the states, ``[0]`` the image."""
    n = len(sigmas)
    states, y = [y0], y0
    for i in range(n - 1):
        t_i = torch.full((), i / n, dtype=y.dtype, device=y.device)
        u = velocity(y, batch_time(t_i, y))
        u_cond = (y1 - y) / (1 - t_i)
        y = y + (u + gamma * (u_cond - u)) * (sigmas[i] - sigmas[i + 1])
        states.append(y)
        if callback is not None:
            callback(i, n - 1, y)
    return states


def eta_at(step: int, steps: int, eta: float, start: float, stop: float, decay: float = 0.0) -> float:
    """RF-Inversion's controller strength at sampling step ``step`` of ``steps``: ``eta`` for the
    steps from ``int(start * steps)`` to ``min(int(stop * steps), steps)`` (excluded), else 0; with
    ``decay`` > 0 times ``(1 - step / steps) ** decay`` (the pipeline's ``decay_eta``)."""
    first, last = int(start * steps), min(int(stop * steps), steps)
    value = eta if first <= step < last else 0.0
    return value * (1 - step / steps) ** decay if decay > 0 else value


def rf_controlled(denoised: torch.Tensor, y0: torch.Tensor, eta: float) -> torch.Tensor:
    """RF-Inversion's controlled reverse ODE as a denoised prediction: the pipeline's
    ``v + eta ((y0 - x) / sigma - v)`` with ``v = (D - x) / sigma`` is the velocity of the Euler
    step towards ``(1 - eta) D + eta y0``."""
    return denoised if eta == 0 else torch.lerp(denoised, y0.to(denoised), eta)
