"""Null-text optimisation (Mokady et al., "Null-text Inversion for Editing Real Images using
Guided Diffusion Models", 2023).

DDIM inversion at guidance 1 gives a trajectory the conditional prediction follows; under
classifier-free guidance the sampler leaves it. Null-text inversion keeps the prompt and
the weights and instead optimises, step by step from the noisiest, the unconditional
("null-text") embedding so that the guided DDIM step from the current latent lands on the
trajectory's next point. The optimised embeddings (one per step) then replace the null text
of every branch while sampling, which reconstructs the image at that guidance scale and
leaves the prompt free to edit.

Paper defaults: 10 Adam steps per timestep, learning rate 1e-2 * (1 - i / 100) at step i,
stop a timestep early once the loss is below 1e-5 + i * 2e-5, warm start from the previous
timestep's embedding, guidance 7.5. The loss is the MSE between the latents the model sees
(for eps/v models the DDPM latents, the host's ``x / sqrt(1 + sigma^2)``: ``Parameterisation.model_scale``),
the space the early-stopping thresholds were set in.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ...inversion.ddim import StepCallback
from ...inversion.parameterisation import EPS, Parameterisation
from ...inversion.solver import eps_step

CondEps = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]                      # (x, sigma) -> eps
UncondEps = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]      # (x, sigma, embedding) -> eps


def null_text_optimize(
    cond_eps: CondEps,
    uncond_eps: UncondEps,
    trajectory: torch.Tensor,
    sigmas: torch.Tensor,
    null_init: torch.Tensor,
    cfg: float = 7.5,
    inner_steps: int = 10,
    lr: float = 1e-2,
    early_stop: bool = True,
    callback: Optional[StepCallback] = None,
    on_inner_step: Optional[Callable[[], None]] = None,
    parameterisation: Parameterisation = EPS,
) -> tuple[torch.Tensor, dict]:
    """Optimise one null embedding per step.

    ``trajectory[j]`` is the inversion's latent at ``sigmas[j]`` (descending, host space);
    ``null_init`` the starting embedding (the empty prompt's). Returns the embeddings
    stacked (``[steps, *null_init.shape]``) and counts: UNet forward and backward passes
    and the inner steps taken at each timestep. Differentiates ``uncond_eps`` only; call
    with gradients enabled. ``on_inner_step()`` is called before every inner (Adam) step, so a
    caller can stop the loop there (an interrupt) instead of only between timesteps.
    ``parameterisation``: the model's sampling space (eps and v models alike by default); the eps
    callables return a flow model's velocity."""
    steps = len(sigmas) - 1
    if trajectory.shape[0] != steps + 1:
        raise ValueError(f"null_text_optimize: {trajectory.shape[0]} trajectory latents for {steps} steps")
    x = trajectory[0].detach().clone()
    null = null_init.detach().clone()
    out, taken = [], []
    forward = backward = 0
    for j in range(steps):
        sigma, sigma_next = sigmas[j], sigmas[j + 1]
        to_model = parameterisation.model_scale(sigma_next)
        goal = trajectory[j + 1].detach() * to_model
        with torch.no_grad():
            eps_c = cond_eps(x, sigma)
        forward += 1
        null = null.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([null], lr=lr * (1 - j / 100))
        threshold = 1e-5 + j * 2e-5
        k = 0
        for k in range(1, inner_steps + 1):
            if on_inner_step is not None:
                on_inner_step()
            eps_u = uncond_eps(x, sigma, null)
            eps = eps_u + cfg * (eps_c - eps_u)
            loss = torch.nn.functional.mse_loss(eps_step(x, eps, sigma, sigma_next) * to_model, goal)
            opt.zero_grad()
            loss.backward()
            opt.step()  # sampling-path-ok: Adam's step count is a CPU tensor (no device wait)
            forward += 1
            backward += 1
            if early_stop and loss.item() < threshold:  # sampling-path-ok: the paper's early stop reads the loss (once per forward + backward)
                break
        taken.append(k)
        null = null.detach()
        with torch.no_grad():
            eps_u = uncond_eps(x, sigma, null)
            x = eps_step(x, eps_u + cfg * (eps_c - eps_u), sigma, sigma_next)
        forward += 1
        out.append(null)
        if callback is not None:
            callback(j, steps, x)
    return torch.stack(out), {"forward": forward, "backward": backward, "inner_steps": taken}
