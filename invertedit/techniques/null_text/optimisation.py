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

from ...inversion.parameterisation import EPS, Parameterisation
from ...inversion.solver import eps_step
from .graphed import Replayed

CondEps = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]                      # (x, sigma) -> eps
UncondEps = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]      # (x, sigma, embedding) -> eps
# (step, steps, x, denoised) -> None after each timestep; denoised() computes the step's denoised estimate
StepCallback = Callable[[int, int, torch.Tensor, Callable[[], torch.Tensor]], None]


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
    capture: bool = False,
    log: Optional[Callable[[str], None]] = None,
) -> tuple[torch.Tensor, dict]:
    """Optimise one null embedding per step.

    ``trajectory[j]`` is the inversion's latent at ``sigmas[j]`` (descending, host space);
    ``null_init`` the starting embedding (the empty prompt's). Returns the embeddings
    stacked (``[steps, *null_init.shape]``) and counts: UNet forward and backward passes,
    the inner steps taken at each timestep, and which passes ran as captured CUDA graphs. Differentiates
    ``uncond_eps`` only; call with gradients enabled. ``on_inner_step()`` is called before every inner
    (Adam) step, so a caller can stop the loop there (an interrupt) instead of only between timesteps.
    ``callback(j, steps, x, denoised)`` after each timestep ``j``, ``x`` the latent it reached and
    ``denoised()`` the guided step's denoised estimate (the clean latent it aimed at, a preview's
    picture), computed only when called and only during the callback.
    ``parameterisation``: the model's sampling space (eps and v models alike by default); the eps
    callables return a flow model's velocity.

    The three passes (the conditional prediction, the inner step's forward and backward, the step to
    the next latent) read static buffers, into which each timestep's values are copied, so that with
    ``capture`` on a CUDA device each is captured once in a CUDA graph and replayed (``graphed.Replayed``;
    ``log`` gets a line for each); the same embeddings either way."""
    steps = len(sigmas) - 1
    if trajectory.shape[0] != steps + 1:
        raise ValueError(f"null_text_optimize: {trajectory.shape[0]} trajectory latents for {steps} steps")
    trajectory = trajectory.detach()
    x = trajectory[0].clone()
    level = sigmas[:1].clone()                  # the static buffers (one timestep's values at a time)
    level_next = sigmas[1:2].clone()
    to_model = parameterisation.model_scale(level_next)
    goal = trajectory[1] * to_model
    eps_c = torch.zeros_like(x)
    null = null_init.detach().clone().requires_grad_(True)

    def conditional() -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return (cond_eps(x, level),)

    def loss_and_grad() -> tuple[torch.Tensor, ...]:
        eps_u = uncond_eps(x, level, null)
        eps = eps_u + cfg * (eps_c - eps_u)
        loss = torch.nn.functional.mse_loss(eps_step(x, eps, level, level_next) * to_model, goal)
        (grad,) = torch.autograd.grad(loss, [null], allow_unused=True, materialize_grads=True)
        return loss.detach(), grad

    def advance() -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            eps_u = uncond_eps(x, level, null)
            eps = eps_u + cfg * (eps_c - eps_u)
            return eps_step(x, eps, level, level_next), eps

    passes = [Replayed(fn, name, capture, log) for fn, name in (
        (conditional, "Null-Text Optimize, the conditional prediction"),
        (loss_and_grad, "Null-Text Optimize, the inner step's forward and backward"),
        (advance, "Null-Text Optimize, the step to the next latent"))]
    cond_pass, inner_pass, advance_pass = passes
    out, taken = [], []
    forward = backward = 0
    for j in range(steps):
        if j:
            level.copy_(sigmas[j:j + 1])
            level_next.copy_(sigmas[j + 1:j + 2])
            to_model.copy_(parameterisation.model_scale(level_next))
            goal.copy_(trajectory[j + 1] * to_model)
        eps_c.copy_(cond_pass()[0])
        forward += 1
        opt = torch.optim.Adam([null], lr=lr * (1 - j / 100))
        threshold = 1e-5 + j * 2e-5
        k = 0
        for k in range(1, inner_steps + 1):
            if on_inner_step is not None:
                on_inner_step()
            loss, null.grad = inner_pass()
            opt.step()  # sampling-path-ok: Adam's step count is a CPU tensor (no device wait)
            forward += 1
            backward += 1
            if early_stop and loss.item() < threshold:  # sampling-path-ok: the paper's early stop reads the loss (once per forward + backward)
                break
        null.grad = None
        taken.append(k)
        x_next, eps_guided = advance_pass()
        x.copy_(x_next)
        forward += 1
        out.append(null.detach().clone())
        if callback is not None:
            # the step's denoised estimate x - sigma * eps (eps/v and flow alike), from where it landed
            callback(j, steps, x,
                     lambda eps=eps_guided: eps_step(x, eps, level_next, torch.zeros_like(level_next)))
    graphs = [name for p, name in zip(passes, ("conditional", "inner step", "advance")) if p.captured]
    return torch.stack(out), {"forward": forward, "backward": backward, "inner_steps": taken, "graphs": graphs}
