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
        self.rows: torch.Tensor | None = None   # joint attention's blend rows, summed over calls (add_rows)
        self.reading: tuple | None = None       # (reader, text tokens, grid) of those rows

    def word_columns(self, length: int, device=None) -> torch.Tensor:
        """``[length, 2]``: the source's and the target's blend-word tokens as indicator columns, so
        that ``maps @ columns`` sums each row's blend-word maps in one product."""
        columns = torch.zeros(length, 2, device=device)
        for c, positions in enumerate(self.positions):
            columns[positions, c] = 1.0
        return columns

    def add_rows(self, rows: torch.Tensor, reader: torch.Tensor, text: int, heads: int, grid: tuple[int, int]) -> None:
        """One attention call's blend rows ``[R, tokens, channels]`` (one or two per pair, each query's
        attention on the blend words' indicator values, every head; the first ``text`` tokens not
        the image's), added to the run's sum of them as they are: one addition a call. ``reader``
        ``[R * channels, 2 * pairs]`` (``blend_reader``) turns the image tokens' sum into the maps
        (``summed``), once a step instead of once a call: the maps are linear in the rows. The sum is float32 (a half-precision model's rows summed over every layer and step)."""
        if self.rows is not None and (self.rows.shape != rows.shape or self.reading[0] is not reader):
            self.sums, self.rows, self.reading = self.summed(), None, None   # another layout: fold the rows in
        if self.rows is None:
            self.rows, self.reading = rows.to(torch.float32, copy=True), (reader, text, grid)
        else:
            self.rows.add_(rows)
        self.count += heads * (reader.shape[1] // 2)   # heads added per map: one a pair

    def summed(self) -> torch.Tensor | None:
        """``[2, h, w]``: the blend words' maps summed over calls and heads (None: none recorded)."""
        if self.rows is None:
            return self.sums
        reader, text, grid = self.reading
        words = self.rows[:, text:].transpose(0, 1).flatten(1) @ reader          # [image tokens, 2 per pair]
        words = words.T.reshape(-1, 2, *grid).sum(0)
        return words if self.sums is None else self.sums + words

    def mask(self, latent_hw: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The target row's blend mask ``[1, 1, h, w]`` in {0, 1} at latent resolution, of ``dtype``."""
        summed = self.summed()
        if summed is None:
            raise ValueError("local blend: no attention maps were recorded at the blend layers")
        maps = (summed / self.count)[:, None]
        maps = F.max_pool2d(maps, 3, stride=1, padding=1)
        maps = F.interpolate(maps, size=latent_hw)
        maps = maps / maps.amax(dim=(2, 3), keepdim=True)
        mask = maps > self.threshold
        return (mask[:1] | mask[1:]).to(dtype)


def blend_reader(pairs: int, heads: int, head_dim: int, own: bool, device=None) -> torch.Tensor:
    """``[rows * heads * head_dim, 2 * pairs]`` float32: what turns a call's blend rows (``add_rows``;
    each pair's source-query row, then, with ``own``, each pair's target-query row, heads side by
    side in the channels) into the pairs' two maps, summed over heads: map ``2p`` is channel 0 of
    pair ``p``'s source row (the source's words), map ``2p + 1`` its channel 1 (the target's words
    through the edit) plus, with ``own``, channel 1 of its target row (the target's own part)."""
    reader = torch.zeros(pairs * (2 if own else 1), heads, head_dim, 2 * pairs, device=device)
    for p in range(pairs):
        reader[p, :, 0, 2 * p] = 1.0
        reader[p, :, 1, 2 * p + 1] = 1.0
        if own:
            reader[pairs + p, :, 1, 2 * p + 1] = 1.0
    return reader.flatten(0, 2)


def blend_denoised(x: torch.Tensor, denoised: torch.Tensor, source_next: torch.Tensor, mask: torch.Tensor,
                   ratio: float) -> torch.Tensor:
    """The target's prediction whose DDIM/Euler step from ``x`` (``denoised + ratio (x - denoised)``,
    ``ratio = sigma_next / sigma < 1``) lands on the blend ``source_next + mask (target_next -
    source_next)``: the step solved for its prediction, ``denoised + (1 - mask) (source_next -
    target_next) / (1 - ratio)``, in four operations."""
    target_next = torch.lerp(denoised, x, ratio)
    return torch.addcmul(denoised, 1 - mask, source_next - target_next, value=1.0 / (1.0 - ratio))


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
