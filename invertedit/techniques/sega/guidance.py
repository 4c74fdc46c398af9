"""Semantic guidance (Brack et al., "SEGA: Instructing Text-to-Image Models using Semantic
Guidance", 2023): add or remove concepts with extra noise predictions combined with CFG.

Per step and concept c: its guidance is ``scale_c * (eps_c - eps_uncond)`` (negated to remove
the concept), kept only where its magnitude is in the top ``1 - threshold_c`` of its channel
(paper: threshold 0.9 keeps the top 10%). A concept acts between its warm-up and cool-down
steps. Momentum (scale, beta) accumulates the edit from the first step and is added once every
concept is past its warm-up; while only some are, their edits are averaged by weight without
momentum. This follows the reference implementation (diffusers' SemanticStableDiffusionPipeline)
step for step, so the two agree on the same weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from ...guidance.concepts import Concept
from ...guidance.policy import GuidancePolicy, Where


@dataclass
class SegaState:
    """Per sampling run: the edit momentum."""
    momentum: Optional[torch.Tensor] = None
    applied: list = field(default_factory=list)   # the semantic guidance added at each step (for inspection)


def sega_eps(eps_uncond: torch.Tensor, eps_text: torch.Tensor, eps_concepts: list[torch.Tensor], step: int,
             cfg: float, concepts: list[Concept], momentum_scale: float, momentum_beta: float,
             state: SegaState) -> torch.Tensor:
    """The guided noise prediction at ``step`` (``[B, C, H, W]`` tensors)."""
    guidance = cfg * (eps_text - eps_uncond)
    if not concepts:
        return eps_uncond + guidance
    if state.momentum is None:
        state.momentum = torch.zeros_like(guidance)
    edits = torch.zeros((len(concepts), *guidance.shape), dtype=guidance.dtype, device=guidance.device)
    weights = torch.zeros((len(concepts), guidance.shape[0]), dtype=guidance.dtype, device=guidance.device)
    warm = []
    for c, (concept, eps_c) in enumerate(zip(concepts, eps_concepts)):
        if step >= concept.warmup:
            warm.append(c)
        if concept.cooldown is not None and step >= concept.cooldown:
            continue
        edit = (eps_c - eps_uncond) * (-1.0 if concept.reverse else 1.0) * concept.scale
        cut = torch.quantile(edit.abs().flatten(start_dim=2).float(), concept.threshold, dim=2).to(edit.dtype)
        edits[c] = torch.where(edit.abs() >= cut[:, :, None, None], edit, torch.zeros_like(edit))
        weights[c] = concept.weight
    weights = weights.clamp_min(0)
    if 0 < len(warm) < len(concepts):
        w = weights[warm]
        w = w / w.sum(dim=0)
        partial = torch.einsum("cb,cbijk->bijk", w, edits[warm])
        guidance = guidance + partial
        state.applied.append(partial)
    edit = torch.einsum("cb,cbijk->bijk", torch.nan_to_num(weights), edits) + momentum_scale * state.momentum
    state.momentum = momentum_beta * state.momentum + (1 - momentum_beta) * edit
    if len(warm) == len(concepts):
        guidance = guidance + edit
        state.applied.append(edit)
    return eps_uncond + guidance


class SegaPolicy(GuidancePolicy):
    """SEGA's guidance: the prompt, the negative and one cond per concept; the edit momentum is
    the run's ``SegaState``."""

    name = "SEGA Guidance"

    def __init__(self, cfg: float, concepts: list[Concept], momentum_scale: float, momentum_beta: float):
        super().__init__(cfg)
        self.concepts, self.momentum_scale, self.momentum_beta = concepts, momentum_scale, momentum_beta

    @property
    def extra(self) -> int:
        return len(self.concepts)

    def make_state(self) -> SegaState:
        return SegaState()

    def combine(self, eps: list[torch.Tensor], where: Where, state: SegaState) -> torch.Tensor:
        return sega_eps(eps[1], eps[0], eps[2:], where.step, self.cfg, self.concepts, self.momentum_scale,
                        self.momentum_beta, state)
