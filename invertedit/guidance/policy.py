"""Guidance policies: what a guidance technique does with the predictions of its conds, apart
from how the host evaluates them.

A policy names the conds it needs (``fixed``, such as the prompt and the negative, plus
``extra`` more, such as SEGA's concepts), which of them the host's pre- and post-CFG functions
see as cond and uncond, and its guidance scale. At every step the host kit's driver
(``hostkit/guidance_driver.py``) evaluates all conds in one batched model call and hands the
policy their noise predictions with ``Where`` it is in the run; the policy returns the guided
prediction (``combine``), or the guided denoised prediction itself (``denoised``) when it moves
the step. A policy that moves the latent before the batched call (``pre_step``) says where the
step from the moved latent lands (``post_step``). What a policy keeps from step to step lives
in the typed per-run state object ``make_state`` builds, never on the policy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

# The unconditional denoised prediction at a latent batch and sigma (the host's model call).
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Where:
    """Where in the sampling run a policy is called."""
    step: int                   # the step's index in the run
    steps: int                  # the run's number of steps
    sigma: torch.Tensor         # the sigma the host passes the model (``[B]``, on the latent's device)
    sigmas: torch.Tensor        # the run's sigmas (``steps + 1``)
    sigma_values: list[float]   # the same as Python floats, read once per run
    timestep: float             # the model's DDPM timestep (0-1000) at this step

    def next_sigma(self, like: torch.Tensor) -> torch.Tensor:
        """The next step's sigma (0-dim), on ``like``'s device and dtype."""
        return self.sigmas[self.step + 1].to(like)


class GuidancePolicy:
    """Classifier-free guidance with the prompt (``positive``) and the negative; techniques
    override what they change."""

    name = "Guidance"                                # the node, for messages
    fixed: tuple[str, ...] = ("positive", "negative")
    cond_index, uncond_index = 0, 1                  # the conds the host's functions see as cond / uncond

    def __init__(self, cfg: float = 1.0):
        self.cfg = cfg

    @property
    def extra(self) -> int:
        """How many conds the policy needs after the fixed ones."""
        return 0

    def make_state(self) -> Optional[object]:
        """A new per-run state object (None: the policy keeps nothing between steps)."""
        return None

    def check_run(self, steps: int) -> None:
        """Raise ValueError (the message for the user) when a run of ``steps`` steps cannot work."""

    def pre_step(self, x: torch.Tensor, where: Where, state, uncond: Denoiser) -> torch.Tensor:
        """The latent the batched model call evaluates (``x`` itself unless the policy moves it)."""
        return x

    def combine(self, eps: list[torch.Tensor], where: Where, state) -> torch.Tensor:
        """The guided noise prediction from the conds' noise predictions (in ``fixed`` + extra order)."""
        return eps[self.uncond_index] + self.cfg * (eps[self.cond_index] - eps[self.uncond_index])

    def denoised(self, x: torch.Tensor, eps: list[torch.Tensor], where: Where, state) -> torch.Tensor:
        """The guided denoised prediction at ``x``, before the host's post-CFG functions."""
        return x - self.combine(eps, where, state) * where.sigma.reshape(-1, *([1] * (x.ndim - 1)))

    def post_step(self, x: torch.Tensor, moved: torch.Tensor, denoised: torch.Tensor, where: Where,
                  state) -> torch.Tensor:
        """The prediction handed to the sampler at ``x``, from ``denoised`` at ``pre_step``'s ``moved``
        latent (after the post-CFG functions)."""
        return denoised

    def finish(self, out: torch.Tensor) -> None:
        """Once after a run, with its output latent (e.g. to warn about what it shows)."""
