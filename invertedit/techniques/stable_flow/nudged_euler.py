"""Stable Flow's inversion (Avrahami et al. 2025, "Stable Flow: Vital Layers for Training-Free Image
Editing", ``snap-research/stable-flow``: their scheduler's ``step_forward``), on the flow solvers'
time rows (``inversion/flow.py``)."""
from __future__ import annotations

from typing import Optional

import torch

from ...inversion.flow import StepCallback, Velocity, batch_time


def ahead_euler(velocity: Velocity, x: torch.Tensor, times: torch.Tensor,
                callback: Optional[StepCallback] = None) -> list[torch.Tensor]:
    """Stable Flow's inversion (Avrahami et al., their scheduler's ``step_forward``): Euler steps up
    the ascending ``times`` with each step's velocity taken at its far end, ``x + (t' - t) v(x,
    t')``. Returns the states, ``[0]`` is ``x``."""
    states, total = [x], len(times) - 1
    for i in range(total):
        t, t_next = times[i], times[i + 1]
        x = x + (t_next - t) * velocity(x, batch_time(t_next, x))
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states
