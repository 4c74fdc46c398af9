"""LEDITS++'s guidance (Brack et al., "LEDITS++: Limitless Image Editing using Text-to-Image
Models", 2024): semantic guidance on an edit-friendly DDPM inversion, where each concept's
guidance is confined by an implicit mask instead of SEGA's per-channel percentile.

Per step and concept c, with ``g_c = scale_c * (eps_c - eps_uncond)`` (negated to remove):

- the **cross-attention mask** M1: the concept row's own cross-attention maps on the concept's
  tokens (summed over the tokens, averaged over heads and layers at a quarter of the latent's
  resolution), smoothed with a 3x3 Gaussian, kept above their ``threshold`` percentile and
  upsampled (nearest) to the latent;
- the **noise mask** M2: ``|g_c|`` summed over channels, kept above its ``threshold`` percentile;
- the edit is ``g_c * M1 * M2`` ("intersect", the paper's default), ``g_c * M1`` or ``g_c * M2``.
  In the noisiest steps (timestep above 800 of 1000) the noise estimate is too coarse and the
  intersection uses M1 alone.

The guided prediction is ``eps_uncond + sum_c edit_c``: LEDITS++ edits with concepts only, no
prompt guidance and no momentum. Numerics follow the reference implementation (diffusers'
``LEditsPPPipelineStableDiffusion``) so the two agree on the same weights.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ...guidance.concepts import Concept
from ...guidance.policy import GuidancePolicy, Where

MASKS = ("intersect", "attention", "noise")
NOISE_MASK_BELOW = 800   # timestep (of 1000) from which on the noise mask joins the intersection


def smoothing_kernel(device: torch.device | str | None = None) -> torch.Tensor:
    """LEDITS++'s 3x3 smoothing kernel (sigma 0.5 in its parameterisation), normalised: ``[1, 1, 3, 3]``."""
    grid = torch.arange(3, dtype=torch.float32, device=device) - 1.0
    one = torch.exp(-(grid / (2 * 0.5)) ** 2) / (0.5 * math.sqrt(2 * math.pi))
    kernel = one[:, None] * one[None, :]
    return (kernel / kernel.sum())[None, None]


def quantile_mask(values: torch.Tensor, threshold: float) -> torch.Tensor:
    """1 where ``values`` (``[B, ...]``) reach their row's ``threshold`` quantile, else 0."""
    cut = torch.quantile(values.flatten(start_dim=1).float(), threshold, dim=1).to(values.dtype)
    return (values >= cut.reshape(-1, *([1] * (values.ndim - 1)))).to(values.dtype)


def attention_mask(maps: torch.Tensor, threshold: float, size: tuple[int, int]) -> torch.Tensor:
    """M1 from ``[B, h, w]`` concept maps: smoothed, cut at the ``threshold`` quantile, resized
    (nearest) to ``size``. Returns ``[B, 1, H, W]`` in {0, 1}."""
    padded = F.pad(maps[:, None].float(), (1, 1, 1, 1), mode="reflect")
    smooth = F.conv2d(padded, smoothing_kernel(padded.device).to(padded.dtype))[:, 0]
    return F.interpolate(quantile_mask(smooth, threshold)[:, None], size=size).to(maps.dtype)


def noise_mask(guidance: torch.Tensor, threshold: float) -> torch.Tensor:
    """M2 from a concept's ``[B, C, H, W]`` guidance: ``[B, 1, H, W]`` in {0, 1}."""
    return quantile_mask(guidance.abs().sum(dim=1, keepdim=True), threshold)


def ledits_eps(eps_uncond: torch.Tensor, eps_concepts: list[torch.Tensor], step: int, timestep: float,
               concepts: list[Concept], maps: Optional[list[Optional[torch.Tensor]]] = None, mask: str = "intersect",
               user_mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, list[Optional[torch.Tensor]]]:
    """(the guided noise prediction, the mask each concept used this step, ``[B, 1, H, W]`` or None
    when it did not act). ``maps[c]``: concept c's ``[B, h, w]`` attention maps this step (needed
    unless ``mask`` is "noise"); ``timestep`` on the 0-1000 training scale; ``user_mask`` (``[B or
    1, 1, H, W]``) multiplies every concept's guidance as well."""
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, not {mask!r}")
    total = torch.zeros_like(eps_uncond)
    used: list[Optional[torch.Tensor]] = []
    for c, (concept, eps_c) in enumerate(zip(concepts, eps_concepts)):
        cooled = concept.cooldown is not None and step >= concept.cooldown
        if step < concept.warmup or cooled:
            used.append(None)
            continue
        edit = (eps_c - eps_uncond) * (-1.0 if concept.reverse else 1.0) * concept.scale * concept.weight
        if user_mask is not None:
            edit = edit * user_mask.to(edit)
        if mask == "noise":
            m = noise_mask(edit, concept.threshold)
        else:
            if maps is None or maps[c] is None:
                raise ValueError(f"concept {c} has no attention maps; mask {mask!r} needs them")
            m = attention_mask(maps[c], concept.threshold, tuple(edit.shape[-2:])).to(edit)
            if mask == "intersect" and timestep <= NOISE_MASK_BELOW:
                m = m * noise_mask(edit, concept.threshold)
        total = total + edit * m
        used.append(m)
    return eps_uncond + total, used


class ConceptMaps:
    """LEDITS++'s per-run state: one step's cross-attention maps of each concept's tokens, summed
    over heads and layers (the host kit's attention patch adds them, the policy takes them)."""

    def __init__(self):
        self.sums: dict[int, torch.Tensor] = {}
        self.heads: dict[int, int] = {}

    def add(self, index: int, maps: torch.Tensor, heads: int) -> None:
        self.sums[index] = maps if index not in self.sums else self.sums[index] + maps
        self.heads[index] = self.heads.get(index, 0) + heads

    def take(self, index: int) -> Optional[torch.Tensor]:
        """The mean map (over heads and layers) of the cond at ``index``, ``[B, h, w]``; clears it."""
        total, heads = self.sums.pop(index, None), self.heads.pop(index, 0)
        return None if total is None else total / heads


class LeditsPolicy(GuidancePolicy):
    """LEDITS++'s guidance: the negative and one cond per concept (cond ``i + 1`` is concept
    ``i``), no prompt guidance (cfg 1); the concepts' attention maps are the run's ``ConceptMaps``."""

    name = "LEDITS++ Guidance"
    fixed = ("negative",)
    cond_index, uncond_index = 1, 0

    def __init__(self, concepts: list[Concept], mask: str, user_mask: Optional[torch.Tensor]):
        super().__init__()
        self.concepts, self.mask, self.user_mask = concepts, mask, user_mask
        self.resized: dict = {}

    @property
    def extra(self) -> int:
        return len(self.concepts)

    def make_state(self) -> ConceptMaps:
        return ConceptMaps()

    def combine(self, eps: list[torch.Tensor], where: Where, state: ConceptMaps) -> torch.Tensor:
        maps = [state.take(i + 1) for i in range(len(self.concepts))]
        guided, _ = ledits_eps(eps[0], eps[1:], where.step, where.timestep, self.concepts, maps, self.mask,
                               self.latent_mask(eps[0]))
        return guided

    def latent_mask(self, like: torch.Tensor) -> Optional[torch.Tensor]:
        """The user MASK at ``like``'s latent size, device and dtype, made once per size (not every step)."""
        if self.user_mask is None:
            return None
        key = (tuple(like.shape[-2:]), like.device, like.dtype)
        if key not in self.resized:
            self.resized[key] = F.interpolate(self.user_mask.reshape(-1, 1, *self.user_mask.shape[-2:]).float(),
                                              size=key[0], mode="bilinear", align_corners=False).to(like)
        return self.resized[key]
