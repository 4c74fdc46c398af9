"""The one contract every inverter follows.

An inverter takes the model as ``denoise(x, sigma)``, the source latent (sampler space) and
the schedule in the host's order (descending, the source's level last, as the sampler will
run it back), and returns an ``Inverted``: the trajectory in the same order (``[0]`` is the
inverted latent sampling starts from, ``[-1]`` the source) and the method's clues (per-step
tensors an edit needs to reproduce the source). An inverter the host's samplers replay (a loop of
the DDIM/Euler step: DDIM, fixed-point, regularised) also takes the model's sampling space as
``parameterisation`` (``parameterisation.py``). Inverter nodes build the INVERSION record from
it in one place (``hostkit/inverters.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Inverted:
    trajectory: torch.Tensor                                  # [steps + 1, B, C, H, W], sampling order
    clues: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def latent(self) -> torch.Tensor:
        """The inverted latent (sampler space): where sampling starts."""
        return self.trajectory[0]
