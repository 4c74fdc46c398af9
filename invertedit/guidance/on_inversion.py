"""Guidance on an inverted image, sampled along its inversion (Proximal Guidance, Noise Map
Guidance): classifier-free guidance with the prompt and the negative, the inversion's latents at
hand. The source rows are the first rows of the batch, as many as the inversion has; the host
kit's ``hostkit/inversion_guidance.py`` checks each run against the inversion.
"""
from __future__ import annotations

import torch

from ..inversion.record import Inversion
from .policy import GuidancePolicy


class InversionPolicy(GuidancePolicy):
    """CFG along ``inversion``. ``exact_step``: the policy computes the sampler's step itself, so
    the run must use the host's ddim or euler step (``exact_else``: what else avoids it, for
    the refusal)."""

    exact_else = ""

    def __init__(self, inversion: Inversion, cfg: float):
        super().__init__(cfg)
        self.inversion = inversion

    @property
    def exact_step(self) -> bool:
        return True

    def source_rows(self, batch: int) -> int:
        return min(self.inversion.trajectory.shape[1], batch)

    def trajectory_at(self, sigma: float, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The inversion's latent at ``sigma`` (its source at 0), one row per batch row, like ``like``."""
        inv = self.inversion
        point = inv.trajectory[-1] if sigma == 0.0 else inv.trajectory[inv.step_at(sigma) - inv.start_step]
        return point.to(like).repeat((batch + point.shape[0] - 1) // point.shape[0], *[1] * (point.ndim - 1))[:batch]
