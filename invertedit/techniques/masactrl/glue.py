"""MasaCtrl inside the host (its policy: ``mutual.py``'s ``MutualSelfAttention``, on the UNet's
self-attention layers in execution order, ``hostkit/layout.py``): the run's check."""
from __future__ import annotations


def idle_reason(start_step: int, steps: int) -> str | None:
    """Why a run of ``steps`` steps would never act (every step before ``start_step``), or None."""
    if start_step < steps:
        return None
    return (f"input 'start_step' is {start_step}, but the run has {steps} steps, so MasaCtrl would never act; "
            f"give a start_step below {steps} (paper: 4).")
