"""Deterministic DDIM inversion and sampling in the host's sigma space.

Conventions (those of ComfyUI and k-diffusion): for eps/v models the sampler state is
``x = x0 + sigma * eps`` (the DDPM latent divided by ``sqrt(alpha_bar)``; flow models:
``parameterisation.py``, where ``eps`` below is the velocity) and a model is seen as
``denoise(x, sigma) -> x0 estimate``. In this space a deterministic DDIM step is exactly an
Euler step of the probability-flow ODE,

    x_next = x + (sigma_next - sigma) * eps,        eps = (x - denoise(x, sigma)) / sigma.

DDIM inversion (Song et al., "Denoising Diffusion Implicit Models"; Mokady et al.,
"Null-text Inversion for Editing Real Images") runs the same step towards larger sigmas.
It cannot evaluate the noise at the point it is going to, so, as the papers and diffusers'
``DDIMInverseScheduler`` do, it evaluates the *current* DDPM latent at the *next* timestep:
the model sees ``z_i = x_i / sqrt(1 + sigma_i^2)`` at ``sigma_{i+1}``, i.e. the host input
``z_i * sqrt(1 + sigma_{i+1}^2)`` (``Parameterisation.at_level``; a flow model sees ``x_i`` itself).
The step is exact when ``eps`` barely changes over one step, which is why reconstruction error
falls as the number of steps rises.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .contract import Inverted
from .parameterisation import EPS, Parameterisation
from .solver import eps_step, euler_step

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def _sigma_batch(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.to(x.dtype).reshape(1).expand(x.shape[0])


def eps_at(denoise: Denoiser, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The noise the model sees in ``x`` at ``sigma`` (sigma > 0; a flow model's velocity)."""
    return (x - denoise(x, _sigma_batch(sigma, x))) / sigma


def ddim_invert_step(denoise: Denoiser, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                     parameterisation: Parameterisation = EPS) -> torch.Tensor:
    """One DDIM inversion step from ``sigma`` up to ``sigma_next`` (> sigma), evaluating the
    current latent at the next timestep (the papers' convention; see the module docstring) as the
    model's ``parameterisation`` sees it (eps and v models alike by default)."""
    eps = eps_at(denoise, parameterisation.at_level(x, sigma, sigma_next), sigma_next)
    return eps_step(x, eps, sigma, sigma_next)


def invert_along(step: Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                 x0: torch.Tensor, sigmas: torch.Tensor, callback: Optional[StepCallback] = None,
                 name: str = "ddim_invert") -> Inverted:
    """The inversion loop every DDIM-type inversion shares: ``sigmas`` descending (the host's
    order; ``sigmas[-1]`` is the sigma of ``x0``, usually 0) are run backwards, each step
    ``step(i, total, x, sigma, sigma_next) -> x`` towards noise. Returns the trajectory in the
    same order: ``[i]`` at ``sigmas[i]``, ``[0]`` the inverted latent, ``[-1]`` the source
    (``inversion/contract.py``). ``callback(i, total, x)`` after each step (progress, interrupts)."""
    if sigmas.ndim != 1 or len(sigmas) < 1:
        raise ValueError(f"{name}: sigmas must be a non-empty 1-D tensor")
    if len(sigmas) > 1 and not bool(torch.all(sigmas[1:] < sigmas[:-1])):  # sampling-path-ok: once per inversion, before its loop
        raise ValueError(f"{name}: sigmas must be strictly descending (the host's order; the inversion runs "
                         "them backwards, towards noise)")
    up = sigmas.flip(0)
    x = x0
    trajectory = [x]
    total = len(up) - 1
    for i in range(total):
        x = step(i, total, x, up[i], up[i + 1])
        trajectory.append(x)
        if callback is not None:
            callback(i, total, x)
    return Inverted(torch.stack(trajectory[::-1]))


def ddim_invert(
    denoise: Denoiser,
    x0: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Optional[StepCallback] = None,
    parameterisation: Parameterisation = EPS,
) -> Inverted:
    """Plain DDIM inversion along ``sigmas`` (``invert_along``) of a model sampled in ``parameterisation``."""
    return invert_along(lambda i, total, x, s, s_next: ddim_invert_step(denoise, x, s, s_next, parameterisation),
                        x0, sigmas, callback)


def ddim_sample(
    denoise: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Optional[StepCallback] = None,
) -> torch.Tensor:
    """Deterministic DDIM (= Euler) sampling along a descending schedule, in every parameterisation;
    the reference the host's ``ddim``/``euler`` samplers are compared against. Returns the final latent."""
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, _sigma_batch(sigma, x))
        x = euler_step(x, denoised, sigma, sigma_next)
        if callback is not None:
            callback(i, total, x)
    return x
