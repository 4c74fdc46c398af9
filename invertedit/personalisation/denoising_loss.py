"""DreamBooth (Ruiz et al., "DreamBooth: Fine Tuning Text-to-Image Diffusion Models for
Subject-Driven Generation", CVPR 2023).

A subject shown in 3-5 photos is bound to a rare identifier ("a sks dog") by fine-tuning the
model on the photos with the instance prompt, while a **prior-preservation loss** on images the
frozen model drew from the class prompt ("a dog") keeps the class and the language from
drifting: loss = instance loss + lambda x prior loss (lambda 1).

What the reference code does and this module reproduces (diffusers' ``train_dreambooth_lora.py``,
read, not copied):

- the dataset has ``max(instances, class images)`` items; item ``i`` pairs instance image
  ``i % instances`` with class image ``i % classes``; each epoch visits the items in a fresh
  random order, in batches of ``batch_size`` (the last one may be smaller): ``batch_order``;
- a batch is its instance latents followed by its class latents; one standard-normal noise for
  the whole batch, then one DDPM timestep per row, uniform in ``[0, 1000)``: ``draw``;
- the loss is the mean squared error of the prediction on the instance rows plus
  ``prior_weight`` times the one on the class rows (``dreambooth_loss``), the prediction's target
  being the noise (eps models) or the velocity (v models).

In the host's sampler space (``x = x0 + sigma * noise``) a model's noise prediction is
``(x - denoised) / sigma`` whatever its parameterisation. For a v-prediction model the
reference's velocity error is the noise error divided by ``sqrt(abar_t)``, i.e. the noise error
weighted by ``1 / abar_t = 1 + sigma_t^2`` (``v_weight``): the same loss, exactly.
torch only: no host imports.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # (x in sampler space, per-row sigma) -> eps prediction


def batch_order(instances: int, classes: int, batch_size: int, generator: torch.Generator) -> Iterator[list[tuple[int, int]]]:
    """The (instance index, class index) pairs of each training batch, forever: epochs over
    ``max(instances, classes)`` items (``instances`` with no class images), each epoch a random
    permutation drawn from ``generator``, cut into batches of ``batch_size``."""
    if instances < 1 or batch_size < 1:
        raise ValueError(f"batch_order: {instances} instances, batch size {batch_size}")
    length = max(instances, classes)
    while True:
        order = torch.randperm(length, generator=generator).tolist()  # sampling-path-ok: a CPU generator, once per epoch
        for start in range(0, length, batch_size):
            yield [(i % instances, i % classes if classes else -1) for i in order[start:start + batch_size]]


def draw(shape: tuple[int, ...], generator: torch.Generator, timesteps: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's draws, in the reference's order: a standard-normal noise of ``shape`` (float32,
    on the generator's device), then one timestep per row uniform in ``[0, timesteps)``."""
    noise = torch.randn(shape, generator=generator, dtype=torch.float32, device=generator.device)
    t = torch.randint(0, timesteps, (shape[0],), generator=generator, device=generator.device)
    return noise, t


def v_weight(sigma: torch.Tensor) -> torch.Tensor:
    """Per-row weight that turns the squared noise error into the squared velocity error:
    ``1 / abar_t = 1 + sigma_t^2``."""
    return 1.0 + sigma.float() ** 2


def dreambooth_loss(eps: torch.Tensor, noise: torch.Tensor, instances: int, prior_weight: float,
                    weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """(loss, instance loss, prior loss) of a batch whose first ``instances`` rows are instance
    images and the rest class images: the mean squared error of ``eps`` against ``noise`` on each
    part (float32), ``weight`` a per-row weight (``v_weight`` for v models), combined as
    ``instance + prior_weight * prior``. With no class rows the prior loss is None and the loss
    the instance loss."""
    err = (eps.float() - noise.float()) ** 2
    if weight is not None:
        err = err * weight.float().reshape(-1, *([1] * (err.dim() - 1)))
    instance = err[:instances].mean()
    if instances == err.shape[0]:
        return instance, instance, None
    prior = err[instances:].mean()
    return instance + prior_weight * prior, instance, prior


def noised(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The latents the model sees, in sampler space: ``x0 + sigma * noise`` per row (the DDPM
    ``sqrt(abar) x0 + sqrt(1 - abar) noise`` once the model scales its input)."""
    return x0 + sigma.to(x0).reshape(-1, *([1] * (x0.dim() - 1))) * noise.to(x0)


def step_loss(eps_fn: EpsFn, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, instances: int,
              prior_weight: float, v_prediction: bool) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """``dreambooth_loss`` of one batch: ``x0`` the batch's clean latents (instance rows first),
    ``noise`` and ``sigma`` (per row) its draws."""
    sigma = sigma.to(device=x0.device, dtype=x0.dtype)
    eps = eps_fn(noised(x0, noise, sigma), sigma)
    return dreambooth_loss(eps, noise.to(eps.device), instances, prior_weight, v_weight(sigma) if v_prediction else None)
