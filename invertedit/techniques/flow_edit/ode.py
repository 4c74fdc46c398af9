"""FlowEdit (Kulikov et al. 2025, "FlowEdit: Inversion-Free Text-Based Editing Using Pre-Trained
Flow Models"): an edit without inversion, for rectified-flow models (SD3, Flux).

The edit ODE starts at the source latent and integrates the *difference* of two velocities: the
target prompt's at ``z_tar`` and the source prompt's at ``z_src``, where ``z_src`` is a fresh
noisy copy of the source at the step's level (``(1 - t) x_src + t n``, a new ``n`` each time) and
``z_tar = z_edit + z_src - x_src`` is the same noise added to the edit so far. Averaging over
``n_avg`` noises per step, skipping the ``steps - n_max`` noisiest steps, and ending with
``n_min`` plain target sampling steps (SDEdit-style from the edit) follow the authors' code
(``fallenshock/FlowEdit``, ``FlowEdit_utils.py``).

Here the host's Euler sampler integrates the ODE: each step hands it a denoised prediction ``D``
whose Euler step ``x + (t' - t)(x - D) / t`` is the authors' step. For flow models the host's
denoised prediction at ``z`` is ``z - t v(z)``, so the authors' update ``z_edit += (t' - t) mean(v_tar -
v_src)`` is the Euler step of ``D = x_src + mean(D_tar - D_src)`` (``edit_denoised``): no division
by ``t``.
"""
from __future__ import annotations

from enum import Enum

import torch


class Phase(Enum):
    """What FlowEdit does at one step of the run."""
    SKIP = "skip"        # before n_max: the edit stays at the source
    EDIT = "edit"        # the edit ODE: the velocity difference
    JUMP = "jump"        # the first of the n_min last steps: noise the edit, then sample the target
    SAMPLE = "sample"    # the rest of the n_min last steps: plain target sampling


def phase(step: int, steps: int, n_max: int, n_min: int) -> Phase:
    """The phase of step ``step`` (0-based) of a run of ``steps`` steps (the authors' ``i`` and
    ``T_steps``: a step acts when ``steps - step <= n_max``, edits while ``steps - step > n_min``)."""
    left = steps - step
    if left > n_max:
        return Phase.SKIP
    if left > n_min:
        return Phase.EDIT
    return Phase.JUMP if left == n_min else Phase.SAMPLE


def noised_source(x_src: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``z_src``: the source at flow level ``sigma`` with ``noise`` (the authors' ``(1 - t) x_src + t n``)."""
    return (1.0 - sigma) * x_src + sigma * noise


def target_input(z_edit: torch.Tensor, z_src: torch.Tensor, x_src: torch.Tensor) -> torch.Tensor:
    """``z_tar``: the edit carrying the same noise as ``z_src`` (``z_edit + z_src - x_src``)."""
    return z_edit + z_src - x_src


def edit_denoised(x_src: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The denoised prediction whose Euler step is the edit ODE's step, for ``delta`` the mean over
    the step's noises of ``D_tar - D_src`` (the denoised predictions at ``z_tar`` and ``z_src``)."""
    return x_src + delta


def landing_denoised(x: torch.Tensor, landing: torch.Tensor, sigma: torch.Tensor,
                     sigma_next: torch.Tensor) -> torch.Tensor:
    """The denoised prediction at ``x`` whose Euler step from ``sigma`` to ``sigma_next`` lands on
    ``landing`` (the jump into the n_min sampling phase, where the authors' state changes)."""
    return x - (landing - x) * sigma / (sigma_next - sigma)


def velocity(z: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A flow model's velocity at ``z`` from its denoised prediction (``D = z - t v``)."""
    return (z - denoised) / sigma


def guided(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance of two predictions (the authors' per-prompt scales on SD3)."""
    return uncond + scale * (cond - uncond)
