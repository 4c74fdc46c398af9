"""FTEdit's inversion (Xu et al., CVPR 2025, "Unveil Inversion and Invariance in Flow Transformer for
Versatile Image Editing", ``Pengchengpcx/FTEdit``, ``inversion/flow_fixpoint_residual_new.py``): each step
of the Euler inversion is solved as a fixed point, with the velocity averaged over its iterations.

The Euler step of sampling from ``t_next`` down to ``t`` is ``x_t = x_next + (t - t_next) v(x_next,
t_next)``. Inverting it exactly asks for the ``x_next`` whose step lands on ``x_t``: ``x_next = x_t +
(t_next - t) v(x_next, t_next)``, an implicit equation, which the authors' ``fixpoint_step`` solves by
iteration from ``x_next = x_t``: ``z_0 = x_t``, ``v_j = v(z_j, t_next)``, ``z_{j+1} = x_t + (t_next - t)
v_j``, ``num_fixpoint_steps + 1`` evaluations, all at the step's far end ``t_next`` (never at the image's
``t = 0``). The velocities of the iterations ``j`` in ``average_step_ranges = [start, stop)`` are averaged
(a running mean, as theirs: ``(j v_avg + v) / (j + 1)``) and the step is taken with that mean; with no
iteration in the range, with the last one's velocity. Their real-image script: 2 iterations (3 evaluations
a step), average over [0, 5): the three velocities' mean.

The state is stepped in float32 and cast back to the velocity's dtype, as theirs (``sample =
latent.to(torch.float32)``; ``.to(noise_pred.dtype)``).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]

#: the authors' real-image setting (``edit_real_sd35.py``): ``num_fixpoint_steps=2``, ``average_step_ranges=(0, 5)``
ITERATIONS = 2
AVERAGE = (0, 5)


def evaluations(steps: int, iterations: int) -> int:
    """Model evaluations of an inversion of ``steps`` steps with ``iterations`` fixed-point iterations."""
    return steps * (iterations + 1)


def averaged(iteration: int, average: tuple[int, int]) -> bool:
    """Whether the velocity of fixed-point ``iteration`` joins the step's mean (``average = [start, stop)``)."""
    return average[0] <= iteration < average[1]


def fixed_point_step(velocity: Velocity, x: torch.Tensor, t_next: torch.Tensor, dt: torch.Tensor,
                     iterations: int, average: tuple[int, int]) -> torch.Tensor:
    """One inversion step from ``x`` (at ``t_next - dt``) to ``t_next``: the authors' ``fixpoint_step``."""
    time = t_next.to(x.dtype).reshape(1).expand(x.shape[0])
    start = x.to(torch.float32)
    z, mean = x, None
    for j in range(iterations + 1):
        v = velocity(z, time)
        if averaged(j, average):
            n = j - average[0]
            mean = v if n == 0 else (n * mean + v) / (n + 1)
        if mean is None or j < iterations:   # the last iterate is replaced by the mean's step
            z = (start + dt * v).to(v.dtype)
    if mean is not None:
        z = (start + dt * mean).to(mean.dtype)
    return z


def invert(velocity: Velocity, x: torch.Tensor, times: torch.Tensor, iterations: int = ITERATIONS,
           average: tuple[int, int] = AVERAGE, callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """FTEdit's inversion of ``x`` along ``times`` (ascending: the image's 0 first); the states at every
    time (``[0]`` is ``x``)."""
    states = [x]
    total = len(times) - 1
    for i in range(total):
        x = fixed_point_step(velocity, x, times[i + 1], times[i + 1] - times[i], iterations, average)
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states
