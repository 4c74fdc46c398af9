"""UniEdit-Flow's editing step (Jiao et al., ICLR'26, "UniEdit-Flow: Unleashing Inversion and Editing in the Era of
Flow Models", Sec. 3.3 Uni-Edit), as the authors' code writes it (``DSL-Lab/UniEdit-Flow``:
``UniEdit-Flow_diffusers/schedulers/UniEditEulerScheduler.py``, ``UniEditEulerScheduler.step``; the Flux code's
``edit_uniedit`` in ``UniEdit-Flow_FLUX/src/flux/sampling.py``). Pure torch.

From the source and target prompts' velocities at the same latent, the edit direction ``g = v_trg - v_src`` gives a
mask: its mean over the channels (of a token: Flux's 2x2 patch of the latent, as the authors' Flux code sees its
packed tokens), min-max normalised per image. The step's velocity is the target's where the mask is high and the
source's where it is low, plus the edit direction amplified by ``omega`` (more where the mask is high):

    v = omega (1 + m) g + m v_trg + (1 - m) v_src

``omega`` 0 keeps the most of the source (the fused velocity alone); higher pushes the edit (the authors: 5).
The mask has two readings in the authors' code: ``"mean"`` (the diffusers schedulers: the signed channel mean, the
default here, as the code used for their SD3/SDXL results and the diffusers Flux) and ``"abs mean"`` (their BFL-Flux
code: the mean of the absolute difference). Both add ``1e-7`` to the range (the diffusers code does; the BFL code
divides by the bare range, which is 0/0 where the prompts agree everywhere).
"""
from __future__ import annotations

import math

import torch

MASKS = ("mean", "abs mean")
EPS = 1e-7


def start_step(alpha: float, steps: int) -> int:
    """The step of a ``steps``-step schedule an edit with delay rate ``alpha`` starts at (and its inversion stops at):
    the authors' schedulers keep the last ``floor(alpha * steps)`` steps (``set_timesteps``: ``skip_steps = steps -
    floor(alpha * steps)``, for ``alpha < 1``; their BFL-Flux code rounds instead of flooring)."""
    return steps - math.floor(alpha * steps) if alpha < 1 else 0


def _cells(t: torch.Tensor, patch: int) -> torch.Tensor:
    """``t`` ([B, C, *spatial], any frames before the last two axes) viewed so that each ``patch`` x ``patch`` cell
    of the last two axes has axes of its own: [B, C, frames, H/p, p, W/p, p] (``patch`` 1: ``t`` itself)."""
    if patch == 1:
        return t
    h, w = t.shape[-2:]
    return t.reshape(t.shape[0], t.shape[1], -1, h // patch, patch, w // patch, patch)


def _normalised(mask: torch.Tensor) -> torch.Tensor:
    """Min-max normalised per image (row), the authors' ``(m - min) / (max - min + 1e-7)``."""
    rows = mask.reshape(mask.shape[0], -1)
    low = rows.amin(dim=1).reshape(-1, *([1] * (mask.ndim - 1)))
    high = rows.amax(dim=1).reshape(-1, *([1] * (mask.ndim - 1)))
    return (mask - low) / (high - low + EPS)


def _cell_mean(t: torch.Tensor, patch: int, mode: str) -> torch.Tensor:
    if mode not in MASKS:
        raise ValueError(f"unknown UniEdit-Flow mask {mode!r}; expected one of {MASKS}")
    t = t.abs() if mode == "abs mean" else t
    return t.mean(dim=1, keepdim=True) if patch == 1 else _cells(t, patch).mean(dim=(1, 4, 6), keepdim=True)


def edit_mask(guidance: torch.Tensor, patch: int = 1, mode: str = "mean") -> torch.Tensor:
    """The per-image min-max normalised channel mean of ``guidance`` ([B, C, *spatial]), one value per token of
    ``patch`` x ``patch`` latent pixels (over its channels and pixels, as a packed Flux token), broadcast back to
    the latent's pixels: [B, 1, *spatial]."""
    mask = _normalised(_cell_mean(guidance, patch, mode))
    if patch == 1:
        return mask
    return mask.expand(*mask.shape[:4], patch, mask.shape[5], patch).reshape(
        guidance.shape[0], 1, *guidance.shape[2:])


def edit_velocity(v_src: torch.Tensor, v_trg: torch.Tensor, omega: float, patch: int = 1,
                  mode: str = "mean") -> torch.Tensor:
    """Uni-Edit's velocity of one step from the source and target prompts' velocities (see the module), as the
    authors write it: the corrected stride ``omega (1 + m) g`` and the fused velocity ``m v_trg + (1 - m) v_src``."""
    guidance = v_trg - v_src
    mask = edit_mask(guidance, patch, mode)
    return omega * (1 + mask) * guidance + mask * v_trg + (1 - mask) * v_src


def edit_denoised(d_src: torch.Tensor, d_trg: torch.Tensor, sigma: torch.Tensor, omega: float, patch: int = 1,
                  mode: str = "mean") -> torch.Tensor:
    """The denoised prediction whose Euler step is Uni-Edit's (``x - sigma v`` of ``edit_velocity``), from the two
    prompts' denoised predictions ``D = x - sigma v`` at the same ``x`` and ``sigma`` ([B, 1, ...], > 0), in fewer
    operations: with ``delta = D_trg - D_src = -sigma g`` and ``v = v_src + g (omega + (1 + omega) m)``,

        x - sigma v = D_src + delta (omega + (1 + omega) m),

    the mask made from ``delta``'s channel mean scaled by ``-1 / sigma`` (``1 / sigma`` for ``"abs mean"``): ``g``'s
    own, so that the ``1e-7`` of its range means what it does in the authors' code."""
    delta = d_trg - d_src
    scale = (1.0 if mode == "abs mean" else -1.0) / sigma.reshape(-1, *([1] * (delta.ndim - 1)))
    mean = _cell_mean(delta, patch, mode)
    mask = _normalised(mean * (scale if patch == 1 else scale.reshape(-1, *([1] * (mean.ndim - 1)))))
    gain = mask * (1.0 + omega) + omega
    if patch == 1:
        return d_src + delta * gain
    return (_cells(d_src, patch) + _cells(delta, patch) * gain).reshape(d_src.shape)
