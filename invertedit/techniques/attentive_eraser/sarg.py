"""Self-Attention Redirection Guidance (SARG) of Attentive Eraser (Sun et al., AAAI 2025), as the authors'
SD inversion pipeline computes it (``pipelines/pipeline_inversion.py``'s ``__call__``, run by
``inference/DIP.py``; the SDXL pipelines do the same).

Every step the latent is evaluated twice in one batch with the same prompt (the code: an empty one, guidance
1): the plain branch ``eps_wo`` and the removal branch ``eps_w``, whose self-attention is AAS's
(``aas.py``). The guided prediction is ``eps_wo + scale (eps_w - eps_wo)`` (the code's ``rm_guidance_scale``
9 in DIP.py). Outside the object's mask the latent follows the DDIM inversion's trajectory: the code sets
``latents = latents * m + record_list[i] * (1 - m)`` before each step and ``latents * m + x0 * (1 - m)``
after the last, ``m`` the pixel mask max-pooled to the latent (``max_pool2d(mask, 8).round()``). Here each
step's prediction is the one whose DDIM/Euler step lands there (``post_step``): the same latents, the step
after instead of before the next (the code's blend at step 0 is the inverted latent itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...guidance.policy import GuidancePolicy, Where
from .aas import REMOVAL

#: The GUIDER's conds by name, in batch order: the plain branch (cond index 0), the removal branch (``REMOVAL``).
BRANCHES = ("plain", "removal")


def sarg(eps_plain: torch.Tensor, eps_removal: torch.Tensor, scale: float) -> torch.Tensor:
    """The guided prediction ``eps_wo + scale (eps_w - eps_wo)``."""
    return eps_plain + scale * (eps_removal - eps_plain)


def keep_background(x: torch.Tensor, denoised: torch.Tensor, inside: torch.Tensor, ratio: float,
                    target: torch.Tensor) -> torch.Tensor:
    """The prediction whose DDIM/Euler step from ``x`` (``denoised + ratio (x - denoised)``, ``ratio =
    sigma_next / sigma < 1``) lands on ``target`` where ``inside`` is 0 and where ``denoised``'s own step lands
    where it is 1 (a 0/1 mask broadcast over the latent)."""
    onto = (target - ratio * x) / (1.0 - ratio)
    return torch.lerp(onto, denoised, inside)


@dataclass
class SargState:
    """Per sampling run: the trajectory and the latent mask on the latent's device and dtype."""
    copies: dict = field(default_factory=dict)


class SargPolicy(GuidancePolicy):
    """SARG over the plain and the removal branch (both the same prompt), the background kept on the
    inversion's ``trajectory`` (``[steps + 1, B, C, h, w]`` in sampling order, the run's states; None: not
    kept) outside ``inside`` (``[1, 1, h, w]`` 0/1, the latent mask)."""

    name = "Attentive Eraser"
    fixed = BRANCHES
    cond_index, uncond_index = REMOVAL, 0

    def __init__(self, scale: float, inside: torch.Tensor, trajectory: torch.Tensor | None):
        super().__init__(scale)
        self.inside, self.trajectory = inside, trajectory

    def make_state(self) -> SargState:
        return SargState()

    def check_run(self, steps: int) -> None:
        if self.trajectory is not None and steps != self.trajectory.shape[0] - 1:
            raise ValueError(f"the run has {steps} steps but the inversion {self.trajectory.shape[0] - 1}; sample "
                             f"with the inversion's SIGMAS (DDIM Invert's output), all of its steps.")

    def combine(self, eps: list[torch.Tensor], where: Where, state: SargState) -> torch.Tensor:
        return sarg(eps[0], eps[REMOVAL], self.cfg)

    def _on(self, x: torch.Tensor, state: SargState) -> tuple[torch.Tensor, torch.Tensor]:
        key = (x.device, x.dtype)
        if key not in state.copies:   # once per run
            state.copies[key] = (self.inside.to(x), self.trajectory.to(x))
        return state.copies[key]

    def post_step(self, x: torch.Tensor, moved: torch.Tensor, denoised: torch.Tensor, where: Where,
                  state: SargState) -> torch.Tensor:
        if self.trajectory is None:
            return denoised
        inside, trajectory = self._on(x, state)
        ratio = where.sigma_values[where.step + 1] / where.sigma_values[where.step]
        return keep_background(x, denoised, inside, ratio, trajectory[where.step + 1])
