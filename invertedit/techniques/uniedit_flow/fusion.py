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
import torch.nn.functional as nnf

MASKS = ("mean", "abs mean")
EPS = 1e-7


def start_step(alpha: float, steps: int) -> int:
    """The step of a ``steps``-step schedule an edit with delay rate ``alpha`` starts at (and its inversion stops at):
    the authors' schedulers keep the last ``floor(alpha * steps)`` steps (``set_timesteps``: ``skip_steps = steps -
    floor(alpha * steps)``, for ``alpha < 1``; their BFL-Flux code rounds instead of flooring)."""
    return steps - math.floor(alpha * steps) if alpha < 1 else 0


def edit_mask(guidance: torch.Tensor, patch: int = 1, mode: str = "mean") -> torch.Tensor:
    """The per-image min-max normalised channel mean of ``guidance`` ([B, C, *spatial]), one value per token of
    ``patch`` x ``patch`` latent pixels (over its channels and pixels, as a packed Flux token), broadcast back to
    the latent's pixels: [B, 1, *spatial]."""
    if mode not in MASKS:
        raise ValueError(f"unknown UniEdit-Flow mask {mode!r}; expected one of {MASKS}")
    g = guidance.abs() if mode == "abs mean" else guidance
    mask = g.mean(dim=1, keepdim=True)
    if patch > 1:
        spatial = mask.shape[2:]
        flat = mask.reshape(-1, 1, *spatial[-2:])
        flat = nnf.avg_pool2d(flat, patch)
        flat = flat.repeat_interleave(patch, dim=-2).repeat_interleave(patch, dim=-1)
        mask = flat.reshape(mask.shape)
    rows = mask.reshape(mask.shape[0], -1)
    low = rows.amin(dim=1).reshape(-1, *([1] * (mask.ndim - 1)))
    high = rows.amax(dim=1).reshape(-1, *([1] * (mask.ndim - 1)))
    return (mask - low) / (high - low + EPS)


def edit_velocity(v_src: torch.Tensor, v_trg: torch.Tensor, omega: float, patch: int = 1,
                  mode: str = "mean") -> torch.Tensor:
    """Uni-Edit's velocity of one step from the source and target prompts' velocities (see the module): the
    corrected stride ``omega (1 + m) g`` and the fused velocity ``m v_trg + (1 - m) v_src``, in fp32."""
    v_src, v_trg = v_src.float(), v_trg.float()
    guidance = v_trg - v_src
    mask = edit_mask(guidance, patch, mode)
    return omega * (1 + mask) * guidance + mask * v_trg + (1 - mask) * v_src
