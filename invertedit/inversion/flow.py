"""Inverting and sampling rectified-flow models (Flux.1, SD3) with the flow papers' ODE solvers.

A flow model gives the velocity ``v(x, t) = dx/dt`` of ``x_t = (1 - t) x0 + t n`` (``t`` the host's
sigma: 0 at the image, 1 at the noise). Sampling integrates from ``t = 1`` down to 0, inversion
from 0 up to 1, along the same schedule, with one of the solvers of the flow-editing papers, as
their code writes them (BFL's ``denoise`` loops, ``timesteps`` the schedule with both ends):

- ``euler``: ``x + dt v(x, t)`` (the papers' baseline, the ``denoise`` of BFL's code: the velocity
  at the step's start, ``t = 0`` included when inverting);
- ``rf-solver`` (Wang et al. 2024, "Taming Rectified Flow for Inversion and Editing",
  ``wangjiangshan0725/RF-Solver-Edit``): a second-order Taylor step whose derivative of the
  velocity is a finite difference at the half step: ``x + dt v + dt^2 / 2 (v_mid - v) / (dt / 2)``;
  two evaluations a step;
- ``fireflow`` (Deng et al. 2024, "FireFlow: Fast Inversion of Rectified Flow for Image Semantic
  Editing"): the midpoint step ``x + dt v_mid``, with the step's start velocity taken from the
  previous step's midpoint velocity (one evaluation a step after the first).

RF-Inversion (Rout et al. 2025, "Semantic Image Inversion and Editing using Rectified Stochastic
Differential Equations") controls the flow towards a target: the inversion towards a fixed noise
``y1`` with strength ``gamma`` (``rf_invert``), the sampling towards the source ``y0`` with ``eta``
(``rf_controlled``), as diffusers' community ``pipeline_flux_rf_inversion.py`` does.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

# v(x, t): the model's velocity at x (batch B) and time t (a [B] tensor)
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]

SOLVERS = ("euler", "rf-solver", "fireflow")


def evaluations(solver: str, steps: int) -> int:
    """Model evaluations (NFE) of ``steps`` steps of ``solver``."""
    return {"euler": steps, "rf-solver": 2 * steps, "fireflow": steps + 1}[solver]


def _t(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).reshape(1).expand(x.shape[0])


def solve(velocity: Velocity, x: torch.Tensor, times: torch.Tensor, solver: str,
          callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """Integrate from ``times[0]`` through ``times`` (ascending: inversion; descending: sampling)
    with ``solver``; returns the states at every time (``[0]`` is ``x``)."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown flow solver {solver!r}; expected one of {SOLVERS}")
    states, carried = [x], None
    total = len(times) - 1
    for i in range(total):
        t, t_next = times[i], times[i + 1]
        dt = t_next - t
        if solver == "euler":
            x = x + dt * velocity(x, _t(t, x))
        else:
            v = carried if (solver == "fireflow" and carried is not None) else velocity(x, _t(t, x))
            v_mid = velocity(x + dt / 2 * v, _t(t + dt / 2, x))
            if solver == "rf-solver":
                x = x + dt * v + 0.5 * dt ** 2 * ((v_mid - v) / (dt / 2))
            else:
                x, carried = x + dt * v_mid, v_mid
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states


def ahead_euler(velocity: Velocity, x: torch.Tensor, times: torch.Tensor,
                callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """Stable Flow's inversion (Avrahami et al., their scheduler's ``step_forward``): Euler steps up
    the ascending ``times`` with each step's velocity taken at its far end, ``x + (t' - t) v(x,
    t')``. Returns the states, ``[0]`` is ``x``."""
    states, total = [x], len(times) - 1
    for i in range(total):
        t, t_next = times[i], times[i + 1]
        x = x + (t_next - t) * velocity(x, _t(t_next, x))
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states


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
        u = velocity(y, _t(t_i, y))
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
