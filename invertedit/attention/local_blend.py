"""Prompt-to-Prompt's local blend (Hertz et al., "Prompt-to-Prompt Image Editing with
Cross-Attention Control"), as its reference code computes it inside the editing run.

At every step the cross-attention maps of the blend words (the source's words in the source
row, the target's in the target row) are added up, from the layers at a quarter of the
latent's resolution, over every step so far. From the blend's start step on, after each
step, the mask is those sums averaged over layers and heads, 3x3 max-pooled, resized to the
latent (nearest), divided by its maximum and thresholded; the source row's mask is OR-ed into
the target's, and the target's latent becomes ``source + mask * (target - source)``. Unlike a
fixed mask, it covers where the target's new word draws (a circle becoming a wider shape).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def blend_start(start: float, steps: int) -> int:
    """The first step after which the latents are blended: ``int(start * steps)``, as the
    reference's step counter (``counter > int(start * N)``) gives."""
    return int(start * steps)


class LocalBlendMaps:
    """The running sums of one (source, target) pair's blend-word maps; one per sampling run."""

    def __init__(self, source_positions: list[int], target_positions: list[int], threshold: float = 0.3):
        self.positions = (list(source_positions), list(target_positions))
        self.threshold = threshold
        self.sums: torch.Tensor | None = None   # [2, h, w]: sum over calls and heads
        self.count = 0                           # heads added per row

    def add(self, words: torch.Tensor, heads: int, grid: tuple[int, int]) -> None:
        """One attention call's blend-word maps ``[2, N]`` (row 0 the source's words in the source's
        maps, row 1 the target's in the target's; each summed over the words' tokens and the
        ``heads``), on an ``h x w`` grid: ``word_columns`` times the maps, summed over heads."""
        summed = words.float().reshape(2, *grid)
        self.sums = summed if self.sums is None else self.sums + summed
        self.count += heads

    def word_columns(self, length: int, device=None) -> torch.Tensor:
        """``[length, 2]``: the source's and the target's blend-word tokens as indicator columns, so
        that ``maps @ columns`` sums each row's blend-word maps in one product."""
        columns = torch.zeros(length, 2, device=device)
        for c, positions in enumerate(self.positions):
            columns[positions, c] = 1.0
        return columns

    def mask(self, latent_hw: tuple[int, int]) -> torch.Tensor:
        """The target row's blend mask ``[1, 1, h, w]`` in {0, 1} at latent resolution."""
        if self.sums is None:
            raise ValueError("local blend: no attention maps were recorded at the blend layers")
        maps = (self.sums / self.count)[:, None]
        maps = F.max_pool2d(maps, 3, stride=1, padding=1)
        maps = F.interpolate(maps, size=latent_hw)
        maps = maps / maps.amax(dim=(2, 3), keepdim=True)
        mask = maps > self.threshold
        return (mask[:1] | mask[1:]).float()


def blend_latents(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The target's latent after the blend: ``source + mask * (target - source)``."""
    return source + mask.to(target) * (target - source)


@dataclass(frozen=True)
class LocalBlend:
    """A local blend's settings: the blend words' token positions in the source and the target
    prompt, the mask threshold, the fraction of the steps before it starts, and the attention
    blocks whose cross-attention maps it reads (latent/4: ``hostkit/layout.map_blocks``)."""

    source: tuple[int, ...]
    target: tuple[int, ...]
    threshold: float = 0.3
    start: float = 0.2
    blocks: frozenset = frozenset()

    def maps(self) -> LocalBlendMaps:
        """A sampling run's empty running sums."""
        return LocalBlendMaps(list(self.source), list(self.target), self.threshold)
