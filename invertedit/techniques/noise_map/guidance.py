"""Noise Map Guidance (Cho et al., "Noise Map Guidance: Inversion with Spatial Context for Real
Image Editing", ICLR 2024; reference code github.com/hansam95/NMG,
``prompt_to_prompt/pipeline_stable_diffusion_nmg.py``).

The DDIM inversion's latents (the "noise maps" ``z*_t``) condition the reconstruction path while
it is sampled, with no optimisation. At every step, for the source (reconstruction) rows:

1. energy guidance towards the noise map: with the unconditional prediction ``eps_u(z_t)``, the
   DDIM step ``z'_{t-1}(z_t)`` is compared with the stored ``z*_{t-1}`` (an L1 distance, mean over
   the latent's elements; L2 and smooth L1 as options) and its gradient w.r.t. ``z_t`` gives
   ``eps_nm = eps_u + s_nm * s_g * sqrt(1 - abar_t) * dL/dz_t`` (``s_nm``: the noise-map guidance
   scale, 10; ``s_g``: the gradient scale, 5000; the code writes it as
   ``eps_u + s_nm * (eps_cond - eps_u)`` with ``eps_cond = eps_u - sqrt(1 - abar_t) * s_g * grad``);
2. a DDIM step with ``eps_nm`` gives ``z^NM``;
3. text guidance: classifier-free guidance (scale 10) is evaluated at ``z^NM`` with the step's
   timestep ``t`` and the DDIM step from ``t`` is taken again from ``z^NM`` (the code steps the
   source twice per timestep: ``z^NM`` is treated as a latent at ``t``).

The target rows take only step 3 from their own latent; they see the source through whatever
attention editor runs (Prompt-to-Prompt, MasaCtrl), which NMG's better source path feeds.

Latents here are the sampler's (``x = x0 + sigma * eps``, ``x = z * sqrt(1 + sigma^2)`` for the
code's DDPM-scaled ``z``); the loss is taken on the code's scale, so the gradient and the scales
mean what they mean in the code. Since the loss is a mean, the pull per element grows as the
latent shrinks: the defaults are the code's for a 64x64 latent (512 px SD1.x).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ...guidance.on_inversion import InversionPolicy
from ...guidance.policy import Denoiser, Where
from ...inversion.record import Inversion
from ...inversion.solver import denoised_onto, euler_step

LOSSES = ("l1", "l2", "smooth_l1")   # the code's noise_cond_loss_type
SMOOTH_L1_BETA = 1e-4                # the code's smooth L1 transition point


def trajectory_loss(prev: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """The distance between the stepped latent and the noise map, averaged over all elements."""
    if loss == "l1":
        return F.l1_loss(prev, target)
    if loss == "l2":
        return F.mse_loss(prev, target)
    if loss == "smooth_l1":
        return F.smooth_l1_loss(prev, target, beta=SMOOTH_L1_BETA)
    raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")


def noise_map_eps(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                  sigma_next: torch.Tensor, target: torch.Tensor, scale: float, grad_scale: float,
                  loss: str = "l1") -> torch.Tensor:
    """The noise-map-guided noise prediction ``eps_nm`` at ``x`` (sigma ``sigma``; the next step's
    ``sigma_next`` and noise map ``target``, all sampler-space). ``denoise`` maps latents to the
    model's unconditional denoised prediction and must be differentiable (gradients are taken
    here, whatever the caller's grad mode).

    In sampler space ``sqrt(1 - abar_t) * dL/dz_t = sigma * dL/dx``, so
    ``eps_nm = eps_u + scale * grad_scale * sigma * dL/dx``."""
    scale_next = (1 + sigma_next ** 2) ** 0.5
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        denoised = denoise(xg)
        distance = trajectory_loss(euler_step(xg, denoised, sigma, sigma_next) / scale_next, target / scale_next, loss)
        (grad,) = torch.autograd.grad(distance, xg)
    eps_uncond = (x - denoised.detach()) / sigma
    return eps_uncond + (scale * grad_scale) * sigma * grad


def noise_map_step(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                   sigma_next: torch.Tensor, target: torch.Tensor, scale: float, grad_scale: float,
                   loss: str = "l1") -> torch.Tensor:
    """``z^NM`` as the sampler-space latent at ``sigma`` where text guidance then starts.

    The code takes the DDIM step to ``t-1`` with ``noise_map_eps`` and then evaluates and steps
    the resulting tensor as a latent at ``t`` again. Its DDPM-scaled tensor is kept; in sampler
    space (``x = z * sqrt(1 + sigma^2)``) that is the step's result times
    ``sqrt(1 + sigma^2) / sqrt(1 + sigma_next^2)``."""
    eps = noise_map_eps(denoise, x, sigma, sigma_next, target, scale, grad_scale, loss)
    stepped = euler_step(x, x - sigma * eps, sigma, sigma_next)
    return stepped * ((1 + sigma ** 2) / (1 + sigma_next ** 2)) ** 0.5


class NoiseMapPolicy(InversionPolicy):
    """Noise Map Guidance on an inversion: the source rows take the noise-map-guided step first
    (``pre_step``: one unconditional pass of the whole batch, so pair editors see their pair and
    change only the target rows, differentiated outside the host's inference mode), then CFG is
    evaluated at the moved latent; the sampler's step from the source rows is handed the
    prediction that lands where the reference's second step lands (``post_step``). The model must
    allow gradients (``hostkit/gradients.py``)."""

    name = "Noise Map Guidance"

    def __init__(self, inversion: Inversion, cfg: float, scale: float, grad_scale: float, loss: str):
        super().__init__(inversion, cfg)
        self.scale, self.grad_scale, self.loss = scale, grad_scale, loss

    def pre_step(self, x: torch.Tensor, where: Where, state, uncond: Denoiser) -> torch.Tensor:
        rows = self.source_rows(x.shape[0])
        sigma, sigma_next = where.sigma.reshape(-1)[0], where.next_sigma(x)
        with torch.inference_mode(False):
            t, rest = where.sigma.clone(), x[rows:].clone()

            def denoise(source: torch.Tensor) -> torch.Tensor:
                return uncond(torch.cat([source, rest]), t)[:rows]

            moved = noise_map_step(denoise, x[:rows].clone(), sigma.clone(), sigma_next.clone(),
                                   self.trajectory_at(where.sigma_values[where.step + 1], rows, x).clone(), self.scale,
                                   self.grad_scale, self.loss)
        return torch.cat([moved.to(x), x[rows:]])

    def post_step(self, x: torch.Tensor, moved: torch.Tensor, denoised: torch.Tensor, where: Where,
                  state) -> torch.Tensor:
        rows = self.source_rows(x.shape[0])
        sigma, sigma_next = where.sigma.reshape(-1)[0], where.next_sigma(x)
        landed = euler_step(moved[:rows], denoised[:rows], sigma, sigma_next)
        out = denoised.clone()
        out[:rows] = denoised_onto(x[:rows], sigma, sigma_next, landed)
        return out
