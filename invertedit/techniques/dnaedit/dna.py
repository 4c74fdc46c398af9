"""DNAEdit (Xie et al., NeurIPS 2025, "DNAEdit: Direct Noise Alignment for Text-Guided Rectified Flow
Editing"): the inversion by direct noise alignment and the edit by Mobile Velocity Guidance, as the
authors' code writes them (``xiechenxi99/DNAEdit_code``, ``scripts/DNAEdit_utils.py``: ``DNAEdit_FLUX`` and
``DNAEdit_SD3``; the reimplementation ``Justin900429/RF-Image-Editing``, ``pipeline/dna_edit.py``, is the same
loop without the noise update: ``align_noise=False``).

Times are the host's sigmas ``t`` (0 at the image, 1 at the noise), ``x_t = (1 - t) x0 + t n``; ``v`` a flow
model's velocity ``dx/dt``.

Inversion, up the schedule from the image (``t < t'``), with a Gaussian noise ``n`` drawn once:

- the next latent is first guessed on the straight line to the noise,
  ``z = x + (t' - t) / (1 - t) (n - x)`` (exact where ``x`` is ``(1 - t) x0 + t n``);
- the model's velocity there, ``v = v(z, t')``, gives the velocity error ``dv = (z - x) / (t' - t) - v`` and
  the inverted latent ``x' = z - (t' - t) dv`` (that is ``x + (t' - t) v``: an Euler step with the velocity
  of the guessed point, not of the current one);
- "direct noise alignment": the noise itself moves by the error, ``n <- n - (1 - t) dv``, so that the next
  guess starts from a noise consistent with the trajectory so far (the authors' code; absent from the
  reimplementation);
- the step records ``dx = (t' - t) dv = z - x'`` (where the guess was, from the latent) and ``v``.

The inversion stops ``start`` steps below the top of the schedule (the authors' ``T_start``: Flux 4 of 28,
SD3 13 of 40); the edit starts there, at the inverted latent.

Edit, down the same schedule from the inverted latent, one target-prompt evaluation a step (step ``k`` of
the edit is step ``k`` of the inversion's record read backwards):

- the target's velocity at the recorded guess, ``v_tar = v_target(x + dx_k, t)``;
- a reference that starts at the source image and follows the velocity difference,
  ``x_ref <- x_ref + (t' - t) (v_tar - v_src,k)``;
- Mobile Velocity Guidance: ``u = mvg v_tar + (1 - mvg) (x - x_ref) / t`` (the second term is the straight
  line's velocity that would land ``x`` on the moving reference at ``t = 0``), and ``x <- x + (t' - t) u``.

With ``mvg = 1`` and the source prompt (at the inversion's guidance) as the target, the edit retraces the
inversion exactly: each step evaluates the same point at the same time and undoes the inversion's step.

The host's Euler sampler integrates the edit: each step hands it the denoised prediction ``x - t u``, whose
Euler step ``x + (t' - t) (x - D) / t`` is the authors' update (``mobile_denoised``).

Pure: torch only.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def draw_noise(like: torch.Tensor, seed: int, packed: bool) -> torch.Tensor:
    """The inversion's Gaussian noise, shaped like ``like``, from a CPU generator seeded ``seed`` (as the host
    draws noise; the authors' ``torch.randn_like`` after ``torch.manual_seed(seed)`` draws the same values on
    the CPU), in float32. ``packed``: drawn in Flux's token layout (``[B, H/2 * W/2, 4C]``, diffusers'
    ``_pack_latents``, as the authors' Flux code draws it) and unpacked."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    b, c, h, w = like.shape[0], like.shape[1], like.shape[-2], like.shape[-1]
    if packed:
        n = torch.randn((b, (h // 2) * (w // 2), c * 4), generator=generator, dtype=torch.float32)   # sampling-path-ok: once per inversion, on the CPU as the host draws noise
        return n.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(like.shape)
    return torch.randn(tuple(like.shape), generator=generator, dtype=torch.float32)   # sampling-path-ok: as above


def _time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).reshape(1).expand(x.shape[0])


def invert(velocity: Velocity, x: torch.Tensor, times: torch.Tensor, noise: torch.Tensor, align_noise: bool = True,
           callback: Optional[StepCallback] = None) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """DNA inversion of ``x`` (the image's latent, float32) up ``times`` (ascending, from the image's time:
    the schedule's lower part, read backwards), with ``noise`` (``draw_noise``). Returns the states (``x``
    first), and per step the offsets ``dx`` and the source velocities ``v``, in inversion order. The
    arithmetic is the authors' line for line (``DNAEdit_utils.py``), in float32."""
    times = times.to(x.device, torch.float32)
    states, offsets, velocities = [x], [], []
    total = len(times) - 1
    for i in range(total):
        t, t_next = times[i], times[i + 1]
        guess = (t_next - t) / (1 - t) * (noise - x) + x
        v = velocity(guess, _time(t_next, guess)).float()
        delta_v = (guess - x) / (t_next - t) - v
        x = guess - delta_v * (t_next - t)
        offsets.append(delta_v * (t_next - t))
        velocities.append(v)
        if align_noise:
            noise = noise - delta_v * (1 - t)
        states.append(x)
        if callback is not None:
            callback(i, total, x)
    return states, offsets, velocities


def moved_reference(x_ref: torch.Tensor, v_tar: torch.Tensor, v_src: torch.Tensor, t: torch.Tensor,
                    t_next: torch.Tensor) -> torch.Tensor:
    """The reference after one edit step: the source moved by the step's velocity difference."""
    return x_ref + (t_next - t) * (v_tar - v_src)


def mobile_velocity(v_tar: torch.Tensor, x: torch.Tensor, x_ref: torch.Tensor, t: torch.Tensor,
                    mvg: float) -> torch.Tensor:
    """Mobile Velocity Guidance: the target's velocity blended with the velocity that lands ``x`` on the
    reference (``mvg`` 1: the target alone; 0: straight to the reference)."""
    return v_tar * mvg + (x - x_ref) / t * (1 - mvg)


def mobile_denoised(x: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The denoised prediction whose Euler step from ``t`` is ``x + (t' - t) velocity``."""
    return x - t * velocity
