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
  previous step's midpoint velocity (one evaluation a step after the first);
- ``uni-inv`` (Jiao et al., ICLR'26, "UniEdit-Flow", ``DSL-Lab/UniEdit-Flow``'s ``UniInvEulerScheduler`` and
  ``denoise_uniinv``): a predictor-corrector step whose velocity is taken at the step's predicted end and used
  twice: to correct the step (``z_k = z_{k-1} + dt_k v(x^_k, t_k)``) and to predict the next end
  (``x^_{k+1} = z_k + dt_{k+1} v(x^_k, t_k)``), so the host's plain Euler step retraces it on the way down; one
  evaluation a step plus the first (``zero_initial``: the first velocity taken as zero, ``steps`` in all).

RF-Inversion's controlled ODEs (``techniques/rf_inversion/controlled_ode.py``) and Stable Flow's
inversion (``techniques/stable_flow/nudged_euler.py``) step the same time rows (``batch_time``).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

# v(x, t): the model's velocity at x (batch B) and time t (a [B] tensor)
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]

SOLVERS = ("euler", "rf-solver", "fireflow", "uni-inv")
#: the solver that samples an inversion of each solver back (Uni-Inv: the authors' reconstruction is plain Euler)
SAMPLED_WITH = {"uni-inv": "euler"}


def evaluations(solver: str, steps: int) -> int:
    """Model evaluations (NFE) of ``steps`` steps of ``solver``."""
    return {"euler": steps, "rf-solver": 2 * steps, "fireflow": steps + 1, "uni-inv": steps + 1}[solver]


def batch_time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The time ``t`` (a 0-d tensor) as one value per row of ``x``, in its dtype."""
    return t.to(x.dtype).reshape(1).expand(x.shape[0])


def solve(velocity: Velocity, x: torch.Tensor, times: torch.Tensor, solver: str,
          callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """Integrate from ``times[0]`` through ``times`` (ascending: inversion; descending: sampling)
    with ``solver``; returns the states at every time (``[0]`` is ``x``)."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown flow solver {solver!r}; expected one of {SOLVERS}")
    if solver == "uni-inv":
        return uni_inv(velocity, x, times, callback=callback)
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


def uni_inv(velocity: Velocity, x: torch.Tensor, times: torch.Tensor, zero_initial: bool = False,
            callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """Uni-Inv (Jiao et al., ICLR'26, Sec. 3.2; ``UniInvEulerScheduler.step``, ``denoise_uniinv``) through ``times``
    (ascending from the image's ``t = 0``): the velocity at the predicted end ``x^_k`` of step ``k`` corrects the
    step from the last corrected state and predicts the next step's end. The first prediction is an Euler step from
    the image (``zero_initial``: the image itself, a velocity of zero, as the authors' ``zero_initial`` /
    ``zero_init``: one evaluation fewer). Returns the corrected states (``[0]`` is ``x``)."""
    states, total = [x], len(times) - 1
    if total < 1:
        return states
    dt = times[1] - times[0]
    predicted = x if zero_initial else x + dt * velocity(x, batch_time(times[0], x))
    for k in range(1, total + 1):
        v = velocity(predicted, batch_time(times[k], x))
        x = x + (times[k] - times[k - 1]) * v
        if k < total:
            predicted = x + (times[k + 1] - times[k]) * v
        states.append(x)
        if callback is not None:
            callback(k - 1, total, x)
    return states
