"""How the sampler's state ``x`` at noise level ``sigma`` relates to the clean latent ``x0`` and the
noise ``n``, for each family of models the host samples (issue 25: the model family as a value).

- ``EPS`` and ``V`` (Stable Diffusion's eps and v prediction), in the host's k-diffusion form:
  ``x = x0 + sigma * n``; the host's model call scales its input by ``1 / sqrt(1 + sigma^2)``, so the
  model sees the DDPM latent ``z = x / sqrt(1 + sigma^2)``.
- ``FLOW`` (rectified flow, the host's ``CONST`` sampling: SD3, Flux): ``x = (1 - sigma) * x0 + sigma * n``;
  the model sees ``x`` itself.

In both the host turns the model's output into a denoised prediction ``d``, and the deterministic
DDIM / Euler step from ``d`` (``solver.euler_step``) is the same formula: ``(x - d) / sigma`` is the
noise for eps/v models and the velocity ``n - x0`` for flow models, and the step is exact for a
prediction that does not change along it. What differs is where the model sees a latent: DDIM
inversion evaluates the current latent at the next noise level (``at_level``), and null-text
inversion compares latents in the model's space (``model_scale``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Parameterisation:
    """One sampling space (see the module docstring): ``name`` is ``"eps"``, ``"v"`` or ``"flow"``."""

    name: str
    flow: bool   # x interpolates between x0 and the noise (else x = x0 + sigma * n)

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The sampler's state at ``sigma`` for clean latent ``x0`` and noise ``noise`` (the host's ``noise_scaling``)."""
        if self.flow:
            return sigma * noise + (1.0 - sigma) * x0
        return x0 + sigma * noise

    def model_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """The factor taking the sampler's state at ``sigma`` to the latent the model sees:
        ``1 / sqrt(1 + sigma^2)`` (the DDPM latent), or 1 for flow models."""
        if self.flow:
            return torch.ones_like(sigma)
        return 1.0 / torch.sqrt(1 + sigma ** 2)

    def at_level(self, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """``x`` (at ``sigma``) as the model's input at ``sigma_next``: the latent the model sees, kept,
        at the other level. The papers' DDIM inversion evaluates the current latent at the next
        timestep: for eps/v models that rescales ``x`` by ``sqrt((1 + sigma_next^2) / (1 + sigma^2))``;
        a flow model sees ``x`` itself, so it is unchanged."""
        if self.flow:
            return x
        return x * torch.sqrt((1 + sigma_next ** 2) / (1 + sigma ** 2))


EPS = Parameterisation("eps", flow=False)
V = Parameterisation("v", flow=False)
FLOW = Parameterisation("flow", flow=True)
PARAMETERISATIONS: dict[str, Parameterisation] = {p.name: p for p in (EPS, V, FLOW)}
