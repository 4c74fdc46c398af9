"""Fixed-point DDIM inversion: each inversion step solves the implicit DDIM equation instead of
assuming the noise barely changes over the step.

Plain DDIM inversion (``inversion/ddim.py``) goes from ``x`` at ``sigma`` to ``sigma_next`` with
the noise the model sees in the *current* latent. The step the host's DDIM/Euler sampler will
take back, from ``x'`` at ``sigma_next`` to ``sigma``, uses the noise of ``x'`` itself, so an
exact inversion is the ``x'`` that solves

    x' = G(x'),        G(z) = x + (sigma_next - sigma) * eps(z, sigma_next),

with ``eps(z, s) = (z - denoise(z, s)) / s``. Then one host sampler step from ``x'`` lands back
on ``x`` to float precision. Three papers solve it by iterating ``G``:

- Fixed-Point Inversion (Meiri et al., "Fixed-point Inversion for Text-to-image diffusion
  models") and ReNoise (Garibi et al., "ReNoise: Real Image Inversion Through Iterative
  Noising", 2024) iterate ``z <- G(z)`` a few times per step, starting from the plain DDIM
  estimate (the model's noise of the current latent at the next timestep: the first
  evaluation is exactly plain DDIM's).
- ReNoise also averages the noise estimates of the last iterations (its code: of estimates 9
  and 10 out of 10) and takes the step with the average; and at the least noisy steps
  (timestep below 250 of 1000) it makes at most 5 estimates and averages all of them.
- AIDI (Pan et al., "Effective Real Image Editing with Accelerated Iterative Diffusion
  Inversion", 2023) speeds the iteration up with Anderson acceleration: the next point is the
  combination of the last few ``G(z_k)`` whose residuals ``G(z_k) - z_k`` cancel best in
  the least-squares sense.

Left out: ReNoise's optional noise regularisation (a KL / auto-correlation penalty on the noise
estimate, pulled towards the model's noise at the forward-noised image, from pix2pix-zero). It
needs one more UNet row per step, gradient steps and random shifts; our steps are deterministic
and replayed by the host's samplers. ReNoise's "noise correction" applies to its stochastic
(Euler ancestral, LCM) schedulers only, not to the DDIM step.

Conventions are those of ``inversion/ddim.py`` (sampler space, descending schedule in,
trajectory in sampling order out: ``inversion/contract.py``).
"""
from __future__ import annotations

from typing import Optional

import torch

from ...inversion.contract import Inverted
from ...inversion.ddim import Denoiser, StepCallback, eps_at, invert_along
from ...inversion.parameterisation import EPS, Parameterisation
from ...inversion.solver import eps_step
from . import ROW

ITERATIONS = ROW.settings["InvertEditFixedPointInvert.iterations"]   # ReNoise's num_renoise_steps (its RunConfig): 10 estimates a step
AVERAGE = ROW.settings["InvertEditFixedPointInvert.average"]   # its average_step_range (8, 10): the last 2 of those 10 estimates
LOW_NOISE_TIMESTEP = 250   # its first_step_max_timestep: below it ...
LOW_NOISE_ESTIMATES = 5    # ... at most 5 estimates (average_first_step_range (0, 5)), all averaged


def step_plan(sigma_next: float, iterations: int, average: int, low_noise_sigma: Optional[float],
              low_noise_estimates: int = LOW_NOISE_ESTIMATES) -> tuple[int, int]:
    """(model evaluations, estimates averaged) of an inversion step towards ``sigma_next``:
    ``iterations + 1`` evaluations and the last ``average`` of them; below ``low_noise_sigma``
    at most ``low_noise_estimates`` evaluations, all averaged (ReNoise's rule)."""
    n = iterations + 1
    if low_noise_sigma is not None and sigma_next < low_noise_sigma:
        n = min(n, low_noise_estimates)
        return n, n
    return n, min(average, n)


def model_evaluations(sigmas: torch.Tensor, iterations: int, low_noise_sigma: Optional[float],
                      low_noise_estimates: int = LOW_NOISE_ESTIMATES) -> int:
    """Model evaluations of a whole inversion over the descending ``sigmas`` (one guided
    prediction each: two UNet rows under CFG). Fixed: the iteration never stops early."""
    up = sigmas.flip(0)
    return sum(step_plan(float(up[i + 1]), iterations, 1, low_noise_sigma, low_noise_estimates)[0]
               for i in range(len(up) - 1))


def anderson_next(points: list[torch.Tensor], images: list[torch.Tensor], memory: int) -> torch.Tensor:
    """The next iterate of Anderson acceleration (type II, no damping) from the last
    ``memory + 1`` points ``z_k`` and their images ``G(z_k)``, per batch row:
    ``G(z_k) - sum_j gamma_j (G(z_{j+1}) - G(z_j))`` with ``gamma`` minimising the residual
    ``f_k - sum_j gamma_j (f_{j+1} - f_j)``, ``f = G(z) - z`` (Walker & Ni's form)."""
    z, g = points[-(memory + 1):], images[-(memory + 1):]
    if len(z) < 2:
        return g[-1]
    b = g[-1].shape[0]
    wide = torch.float32 if g[-1].device.type == "mps" else torch.float64   # MPS has no float64
    f = torch.stack([(gi - zi).reshape(b, -1) for gi, zi in zip(g, z)], dim=2).to(wide)   # [B, N, m+1]
    gs = torch.stack([gi.reshape(b, -1) for gi in g], dim=2).to(wide)
    d_f, d_g = f[..., 1:] - f[..., :-1], gs[..., 1:] - gs[..., :-1]                       # [B, N, m]
    a = d_f.transpose(1, 2) @ d_f                                                          # [B, m, m]
    rhs = d_f.transpose(1, 2) @ f[..., -1:]                                                # [B, m, 1]
    # Tikhonov on the normal equations: the differences shrink as the iteration converges
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    scale = a.diagonal(dim1=1, dim2=2).mean(-1).reshape(b, 1, 1)
    gamma = torch.linalg.solve(a + (1e-10 * scale + 1e-30) * eye, rhs)
    return (gs[..., -1:] - d_g @ gamma).reshape(g[-1].shape).to(g[-1].dtype)


def fixed_point_step(denoise: Denoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                     estimates: int, average: int, anderson: int = 0,
                     parameterisation: Parameterisation = EPS) -> torch.Tensor:
    """One inversion step from ``x`` at ``sigma`` up to ``sigma_next``: ``estimates`` model
    evaluations, the first plain DDIM's (the current latent at the next timestep), each next one
    at the current estimate of the next latent (Anderson-accelerated with memory ``anderson``,
    or plain ``z <- G(z)``); the step is taken with the mean of the last ``average`` noise
    estimates (1: the last iterate's). ``parameterisation``: the model's sampling space (DDIM's
    evaluation point; eps and v models alike by default)."""
    z = parameterisation.at_level(x, sigma, sigma_next)   # DDIM's evaluation point
    points, images, noise = [], [], []
    for k in range(estimates):
        eps = eps_at(denoise, z, sigma_next)
        noise.append(eps)
        if k == estimates - 1:
            break
        g = eps_step(x, eps, sigma, sigma_next)
        if anderson > 0:
            points.append(z)
            images.append(g)
            z = anderson_next(points, images, anderson)
            del points[:-anderson], images[:-anderson]
        else:
            z = g
    last = noise[-average:]
    eps = last[0] if len(last) == 1 else torch.stack(last).mean(0)
    return eps_step(x, eps, sigma, sigma_next)


def fixed_point_invert(
    denoise: Denoiser,
    x0: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Optional[StepCallback] = None,
    *,
    iterations: int = ITERATIONS,
    average: int = AVERAGE,
    anderson: int = 0,
    low_noise_sigma: Optional[float] = None,
    low_noise_estimates: int = LOW_NOISE_ESTIMATES,
    parameterisation: Parameterisation = EPS,
) -> Inverted:
    """Invert ``x0`` along a descending schedule (the host's order; ``sigmas[-1]`` is the sigma
    of ``x0``), solving each step's implicit DDIM equation by ``iterations`` re-evaluations of
    the model after the plain DDIM one (``iterations=0`` is ``ddim_invert`` exactly).

    ``average``: the step uses the mean of the last ``average`` noise estimates (ReNoise: 2;
    1: the fixed-point iterate alone). ``anderson``: Anderson acceleration with that many past
    iterates (AIDI; 0: plain iteration, ReNoise's). ``low_noise_sigma``: steps towards a sigma
    below it make at most ``low_noise_estimates`` estimates and average them all (ReNoise's
    rule below timestep 250; None: off). ``parameterisation``: the model's sampling space (as in
    ``ddim_invert``). Returns the trajectory as ``ddim_invert`` does; no
    clues: the host's DDIM/Euler samplers replay it as they replay a DDIM inversion."""
    if iterations < 0 or average < 1 or anderson < 0 or low_noise_estimates < 1:
        raise ValueError(f"fixed_point_invert: iterations ({iterations}) and anderson ({anderson}) must be 0 or more, "
                         f"average ({average}) and low_noise_estimates ({low_noise_estimates}) 1 or more")

    def step(i, total, x, sigma, sigma_next):
        n, k = step_plan(float(sigma_next), iterations, average, low_noise_sigma, low_noise_estimates)  # sampling-path-ok: once per step of several UNet passes
        return fixed_point_step(denoise, x, sigma, sigma_next, n, k, anderson, parameterisation)

    return invert_along(step, x0, sigmas, callback, "fixed_point_invert")
