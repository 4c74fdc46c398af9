"""Imagic (Kawar et al., "Imagic: Text-Based Real Image Editing with Diffusion Models", CVPR 2023).

Imagic edits one real image with a target text in three stages:

1. **Text embedding optimisation.** Starting from the target text's embedding ``e_tgt``, optimise
   the embedding itself (the diffusion model frozen) with the model's denoising loss on the
   image, at random timesteps and noises, giving ``e_opt``: an embedding close to the target
   text's that reconstructs the image.
2. **Model fine-tuning.** With ``e_opt`` fixed, fine-tune the model with the same loss, so that
   ``e_opt`` reproduces the image faithfully (the paper fine-tunes the whole model; this pack a
   LoRA, see ``glue.py``).
3. **Interpolation.** Generate with the fine-tuned model from ``e = eta * e_tgt + (1 - eta) * e_opt``
   (the paper's eta, about 0.7); eta 0 reconstructs the image, larger eta follows the text more.

The loss is the one diffusion models are trained with (Ho et al.'s "simple" loss): with a DDPM
timestep ``t`` drawn uniformly from the training timesteps and ``eps ~ N(0, I)``,
``|| eps_model(x_t, t, e) - eps ||^2`` (mean over the latent). In the host's sampler space
(``x = x0 + sigma * eps``, ``sigma_t = sqrt((1 - abar_t) / abar_t)``) the noised latent is
``x0 + sigma_t * eps``, which the UNet sees as the DDPM latent ``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``.

Reference code (read, not copied): diffusers' community ``imagic_stable_diffusion.py``: Adam
(default betas), embedding lr 1e-3 for 500 steps, UNet lr 2e-6 for 1000 steps, one noise and
one timestep per step drawn in that order (``randn`` then ``randint(1000)``) from the global
generator, which ``draw`` reproduces from a seeded generator. torch only: no host imports.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

from ...personalisation.training import LossFn

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (x in sampler space, sigma) -> eps prediction


def draw(x0: torch.Tensor, generator: torch.Generator, timesteps: int = 1000) -> tuple[torch.Tensor, int]:
    """One training draw, as the reference code makes it: a standard normal noise shaped like
    ``x0`` (float32, on the generator's device), then a timestep uniform in ``[0, timesteps)``."""
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32, device=generator.device)
    t = int(torch.randint(timesteps, (1,), generator=generator, device=generator.device).item())  # sampling-path-ok: on the generator's device (the CPU: seeded draws)
    return noise, t


def denoising_loss(eps_fn: EpsFn, x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The diffusion loss at one noise level: ``mean((eps_fn(x0 + sigma * noise, sigma) - noise)^2)``,
    computed in float32 whatever the model's dtype."""
    noise = noise.to(device=x0.device, dtype=x0.dtype)
    sigma = sigma.to(device=x0.device, dtype=x0.dtype).reshape(-1)
    eps = eps_fn(x0 + sigma.reshape(-1, *([1] * (x0.dim() - 1))) * noise, sigma)
    return torch.nn.functional.mse_loss(eps.float(), noise.float())


def random_timestep_loss(eps_fn: EpsFn, x0: torch.Tensor, sigmas: torch.Tensor,
                         generator: torch.Generator) -> LossFn:
    """The loss Imagic minimises at every step: a fresh ``draw`` (noise, then timestep ``t``)
    and ``denoising_loss`` at ``sigmas[t]``. ``sigmas`` holds the model's training noise levels
    indexed by DDPM timestep (ascending, 1000 for Stable Diffusion)."""
    def loss(step: int) -> torch.Tensor:
        noise, t = draw(x0, generator, len(sigmas))
        return denoising_loss(eps_fn, x0, sigmas[t], noise)
    return loss


def fixed_draws(shape: tuple[int, ...], count: int, seed: int, timesteps: int = 1000) -> list[tuple[torch.Tensor, int]]:
    """``count`` draws from a generator seeded with ``seed``: the same (noise, timestep) pairs every
    time, to compare a loss before and after an optimisation."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(shape)
    return [draw(x, g, timesteps) for _ in range(count)]


@torch.no_grad()
def mean_loss(eps_fn: EpsFn, x0: torch.Tensor, sigmas: torch.Tensor,
              draws: Iterable[tuple[torch.Tensor, int]]) -> float:
    """The mean ``denoising_loss`` over given draws (no gradients): the reconstruction loss estimate."""
    losses = [float(denoising_loss(eps_fn, x0, sigmas[t], noise)) for noise, t in draws]
    return sum(losses) / len(losses)


def interpolate(target: torch.Tensor, optimized: torch.Tensor, alpha: float) -> torch.Tensor:
    """The paper's ``alpha * e_tgt + (1 - alpha) * e_opt`` (its eta; the reference code calls it
    ``alpha``). Exact at both ends: alpha 1 gives ``target``, alpha 0 ``optimized``, bit for bit
    (for finite embeddings). Values above 1 extrapolate past the target (the reference code's
    default is 1.2)."""
    if target.shape != optimized.shape:
        raise ValueError(f"interpolate: target {tuple(target.shape)} and optimized {tuple(optimized.shape)} differ")
    return alpha * target + (1.0 - alpha) * optimized.to(target)
