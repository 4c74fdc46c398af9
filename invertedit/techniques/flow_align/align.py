"""FlowAlign (Kim et al. 2025, "FlowAlign: Trajectory-Regularized, Inversion-Free Flow-based Image Editing"):
FlowEdit's inversion-free edit ODE with a flow-matching regulariser that keeps the edit's trajectory aligned with
the source's. The math of the authors' code (``FlowAlign/FlowAlign``, ``diffusion/editing/sd3_edit.py``,
``SD3FlowAlign.sample``), at every step ``t -> t'`` of the run (none skipped):

    q   = (1 - t) x_src + t eps            a fresh noisy copy of the source (a new ``eps`` each step)
    p   = x + q - x_src                    the same noise on the edit so far
    v_p = v_src(p) + g (v_tgt(p) - v_src(p))   the target's guidance over the SOURCE prompt (not an empty one)
    v_q = v_src(q)                         the source prompt, unguided
    x  <- x + (t' - t)(v_p - v_q) + zeta (q - t v_q - p + t v_p)

``q - t v_q`` and ``p - t v_p`` are the two denoised predictions ``D_q``, ``D_p``: the regulariser moves the edit by
``zeta (D_q - D_p)`` each step, towards the source's clean estimate (the paper's flow-matching loss between the two
trajectories, one gradient step of weight ``zeta`` per step; the code's ``0.01``).

The host's Euler sampler integrates it: its step ``x + (t' - t)(x - D) / t`` is the authors' for the denoised
prediction ``D = x_src + (D_p - D_q)(1 - zeta t / (t - t'))`` (``edit_denoised``; with ``zeta`` 0 it is FlowEdit's
``x_src + D_p - D_q``). The regulariser is a move per step, not per unit of time, so a schedule of more steps
regularises more (as the authors' code does); a step of zero length cannot carry it (``check_schedule``).
"""
from __future__ import annotations

import torch


def noised_source(x_src: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``q``: the source at flow level ``sigma`` with ``noise`` (the authors' ``(1 - sigma) zsrc + sigma eps``)."""
    return (1.0 - sigma) * x_src + sigma * noise


def edit_input(x: torch.Tensor, q: torch.Tensor, x_src: torch.Tensor) -> torch.Tensor:
    """``p``: the edit carrying ``q``'s noise (the authors' ``xt + qt - zsrc``)."""
    return x + q - x_src


def guided(source: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """The target's classifier-free guidance over the source prompt at ``p`` (the authors' ``vpn + cfg (vpc - vpn)``,
    here on denoised predictions, which is the same combination: both are at ``p``)."""
    return source + scale * (target - source)


def edit_denoised(x_src: torch.Tensor, d_p: torch.Tensor, d_q: torch.Tensor, sigma: torch.Tensor,
                  sigma_next: torch.Tensor, zeta: float) -> torch.Tensor:
    """The denoised prediction whose Euler step from ``sigma`` to ``sigma_next`` is the authors' FlowAlign step,
    given the guided denoised prediction ``d_p`` at ``p`` and the source's ``d_q`` at ``q`` (module docstring)."""
    return x_src + (d_p - d_q) * (1.0 - zeta * sigma / (sigma - sigma_next))


def check_schedule(sigmas: torch.Tensor) -> str | None:
    """Why ``sigmas`` cannot carry FlowAlign's steps (None where it can): each step must go down in noise (the
    regulariser's move per step is the Euler step's ``(t - t')`` times ``zeta t / (t - t')``)."""
    steps = sigmas[1:] - sigmas[:-1]
    if bool((steps >= 0).any()):   # sampling-path-ok: once per run, before its first step
        return "the schedule has a step that does not go down in noise (two equal sigmas or a rise)"
    return None
