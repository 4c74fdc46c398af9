"""The sampling side of DragonDiffusion and DiffEditor as the authors' ``Sampler.edit`` runs it
(MC-E/DragonDiffusion, ``src/models/Sampler.py``), in the host's sigma space
(``x = z / sqrt(alpha_bar)``, ``sigma = sqrt((1 - alpha_bar) / alpha_bar)``, ``inversion/ddim.py``).

Which steps do what (the code's step indexes for its 50 DDIM steps; a run of N steps scales each
bound by N / 50 and rounds, so at 50 steps they are the code's):

- the memory bank (the decoder's self-attention reads the inversion's keys and values) from step 5;
- energy guidance at the steps before 30: every step before 10, then every other one
  (DiffEditor, the code's ``alg='D+'``; DragonDiffusion, ``alg='D'``: every step before 30);
- DiffEditor's regional SDE at the steps 11-19: noise of strength ``eta`` (0.4) inside the edited
  region, DDIM (0) outside;
- DiffEditor's time travel at the even steps 22-28: the step is taken three times, the latent
  taken back up one step (a DDIM inversion step, the prompt alone) between the tries.

The guided step: with ``g`` the guidance (the energies' gradient, ``energy.guidance``) added to the
predicted noise ``eps``, the code's DDIM step takes its clean estimate from ``eps + g`` and its
direction from ``eps`` alone:

    x_next = (x - sigma (eps + g)) + sqrt(1 - a_next - std^2) / sqrt(a_next) eps + std / sqrt(a_next) noise

with ``a = alpha_bar`` and ``std = eta * sqrt(variance)`` (DDIM's ``eta`` variance); at ``std`` 0
this is ``x + (sigma_next - sigma) eps - sigma g``. Pure torch: no host.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

CODE_STEPS = 50   # the schedule's step indexes are the code's, for its 50 DDIM steps
DIFFEDITOR, DRAGONDIFFUSION = "DiffEditor", "DragonDiffusion"
VARIANTS = (DIFFEDITOR, DRAGONDIFFUSION)


@dataclass(frozen=True)
class DragonSchedule:
    """What step ``i`` of a run of ``steps`` does; ``variant``: DiffEditor (the code's default,
    ``alg='D+'``) or DragonDiffusion (``alg='D'``: guidance at every step before 30, no regional
    SDE, no time travel); ``guided``: whether the energy scale is above 0 (the code's
    ``energy_scale != 0``)."""
    steps: int
    variant: str = DIFFEDITOR
    guided: bool = True

    def at(self, code_step: int) -> int:
        """The code's step index ``code_step`` (of 50) in this run."""
        return int(round(code_step * self.steps / CODE_STEPS))

    def bank(self, i: int) -> bool:
        """Whether the decoder's self-attention reads the inversion's keys and values (code: ``iter_cur >= 5``)."""
        return i >= self.at(5)

    def guide(self, i: int) -> bool:
        """Whether step ``i`` is guided by the energies (code: ``i < 30 and (alg == 'D' or i % 2 == 0 or i < 10)``)."""
        if not self.guided or i >= self.at(30):
            return False
        return self.variant == DRAGONDIFFUSION or i % 2 == 0 or i < self.at(10)

    def sde(self, i: int) -> bool:
        """Whether DiffEditor's regional SDE acts at step ``i`` (code: ``10 < i < 20``, ``alg == 'D+'``)."""
        return self.variant == DIFFEDITOR and self.at(10) < i < self.at(20)

    def tries(self, i: int) -> int:
        """How often step ``i`` is taken (DiffEditor's time travel: 3 at the even steps 21-29)."""
        if not self.guided or self.variant == DRAGONDIFFUSION:
            return 1
        return 3 if self.at(20) < i < self.at(30) and i % 2 == 0 else 1

    def model_rows(self) -> dict[str, int]:
        """The run's UNet evaluations, in latent rows (the cost against a plain CFG run's ``2 N``):
        CFG rows, memory-bank rows, feature rows (the edited latent with gradients and the
        inversion's), time-travel rows; and the backward passes (two a guided try)."""
        rows = {"cfg": 0, "bank": 0, "features": 0, "travel": 0, "backward": 0}
        for i in range(self.steps):
            tries = self.tries(i)
            rows["cfg"] += 2 * tries
            rows["bank"] += 1 if self.bank(i) else 0
            if self.guide(i):
                rows["features"] += 2 * tries
                rows["backward"] += 2 * tries
            rows["travel"] += tries - 1
        return rows


def alpha_bar(sigma: torch.Tensor) -> torch.Tensor:
    """``alpha_bar`` of a sigma of the host's VP sampling space."""
    return 1 / (1 + sigma * sigma)


def ddim_variance(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """DDIM's variance from ``sigma`` to ``sigma_next`` (diffusers' ``DDIMScheduler._get_variance``)."""
    a, a_next = alpha_bar(sigma), alpha_bar(sigma_next)
    return (1 - a_next) / (1 - a) * (1 - a / a_next)


def guided_step(x: torch.Tensor, eps: torch.Tensor, guide: torch.Tensor | None, sigma: torch.Tensor,
                sigma_next: torch.Tensor, eta: torch.Tensor | float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The code's step from ``x`` at ``sigma`` to ``sigma_next``: the clean estimate from ``eps + guide``,
    the direction from ``eps``; ``eta`` (a number, or a map that broadcasts over ``x``: DiffEditor's
    regional strength) scales DDIM's standard deviation, ``noise`` the standard normal noise it adds."""
    sigma, sigma_next = sigma.to(x), sigma_next.to(x)
    clean = x - sigma * (eps if guide is None else eps + guide)
    a_next = alpha_bar(sigma_next)
    std = eta * ddim_variance(sigma, sigma_next).sqrt()
    out = clean + ((1 - a_next - std * std).clamp(min=0) / a_next).sqrt() * eps
    if noise is not None:
        out = out + std / a_next.sqrt() * noise
    return out


def travel_back(x_next: torch.Tensor, eps_next: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """DiffEditor's time travel: ``x_next`` (at ``sigma_next``) taken back to ``sigma`` by a DDIM
    inversion step with the noise ``eps_next`` predicted at ``sigma_next`` (the code evaluates the
    prompt alone at the lower timestep)."""
    return x_next + (sigma.to(x_next) - sigma_next.to(x_next)) * eps_next


def host_denoised(x: torch.Tensor, x_next: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The prediction for which the host's DDIM/Euler step from ``x`` (``x + (sigma_next - sigma)
    (x - denoised) / sigma``) lands on ``x_next``."""
    sigma, sigma_next = sigma.to(x), sigma_next.to(x)
    return x - sigma * (x_next - x) / (sigma_next - sigma)
