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

RF-Inversion's controlled ODEs (``techniques/rf_inversion/controlled_ode.py``) and Stable Flow's
inversion (``techniques/stable_flow/nudged_euler.py``) step the same time rows (``batch_time``).
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


def batch_time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The time ``t`` (a 0-d tensor) as one value per row of ``x``, in its dtype."""
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
            x = x + dt * velocity(x, batch_time(t, x))
        else:
            v = carried if (solver == "fireflow" and carried is not None) else velocity(x, batch_time(t, x))
            v_mid = velocity(x + dt / 2 * v, batch_time(t + dt / 2, x))
            if solver == "rf-solver":
                x = x + dt * v + 0.5 * dt ** 2 * ((v_mid - v) / (dt / 2))
            else:
                x, carried = x + dt * v_mid, v_mid
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states
