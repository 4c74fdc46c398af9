"""Prompt-to-Prompt's local blend (Hertz et al., "Prompt-to-Prompt Image Editing with
Cross-Attention Control"), as its reference code computes it inside the editing run.

At every step the cross-attention maps of the blend words (the source's words in the source
row, the target's in the target row) are added up, from the layers at a quarter of the
latent's resolution, over every step so far. From the blend's start step on, after each
step, the mask is those sums averaged over layers and heads, 3x3 max-pooled, resized to the
latent (nearest), divided by its maximum and thresholded; the source row's mask is OR-ed into
the target's, and the target's latent becomes ``source + mask * (target - source)``. Unlike a
fixed mask, it covers where the target's new word draws (a circle becoming a wider shape).

The reference's ``substruct_words`` (the subtract words here): a second pair of word groups whose maps,
not pooled, resized, normalised and thresholded the same way (the source's OR-ed with the target's),
are taken out of the mask: "edit the background, not the house".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def blend_start(start: float, steps: int) -> int:
    """The first step after which the latents are blended: ``int(start * steps)``, as the
    reference's step counter (``counter > int(start * N)``) gives."""
    return int(start * steps)


class LocalBlendMaps:
    """The running sums of one (source, target) pair's blend-word maps; one per sampling run. With
    subtract words, two maps more: the subtract words' (the source's, the target's).

    The maps are not divided by how many heads, layers and steps were added, as the reference
    averages them: the mask divides each map by its maximum, which cancels any such count."""

    def __init__(self, source_positions: list[int], target_positions: list[int], threshold: float = 0.3,
                 subtract_source: list[int] | None = None, subtract_target: list[int] | None = None):
        self.positions = (list(source_positions), list(target_positions))
        if subtract_source or subtract_target:
            self.positions += (list(subtract_source or ()), list(subtract_target or ()))
        self.threshold = threshold
        self.sums: torch.Tensor | None = None    # [maps, 1, h, w]: the maps of earlier layouts (summed)
        self.buffer: torch.Tensor | None = None  # [tokens, R, channels] float32: the blend rows summed over calls
        self.rows: torch.Tensor | None = None    # the same as [*R, tokens, channels] (a view: add_rows adds into it)
        self.reading: tuple | None = None        # (reader, text tokens, grid) of those rows

    @property
    def count(self) -> int:
        """How many maps: 2 (the blend words', the source's and the target's), 4 with subtract words."""
        return len(self.positions)

    def word_columns(self, length: int, device=None) -> torch.Tensor:
        """``[length, count]``: the source's and the target's blend-word tokens (then their subtract words')
        as indicator columns, so that ``maps @ columns`` sums each row's blend-word maps in one product."""
        columns = torch.zeros(length, self.count, device=device)
        for c, positions in enumerate(self.positions):
            columns[positions, c] = 1.0
        return columns

    def add_rows(self, rows: torch.Tensor, reader: torch.Tensor, text: int, grid: tuple[int, int],
                 weight: torch.Tensor | None = None) -> None:
        """One attention call's blend rows ``[*R, tokens, channels]`` (one or two per pair, each query's
        attention on the blend words' indicator values, every head; the first ``text`` tokens not
        the image's), times ``weight`` where given (broadcast over them: a per-query weight ``[*R, tokens,
        1]``), added to the run's sum of them as they are: one operation a call. ``reader`` ``[R *
        channels, 2]`` (``blend_reader``; ``R`` the product of the leading sizes) turns the image tokens'
        sum into the maps (``summed``), once a step instead of once a call: the maps are linear in the
        rows. The sum is float32 (a half-precision model's rows summed over every layer and step), kept
        token-major so that reading it needs no copy."""
        shape = rows.shape if weight is None else torch.broadcast_shapes(rows.shape, weight.shape)
        if self.rows is not None and (self.rows.shape != shape or self.reading[0] is not reader):
            self.sums, self.buffer, self.rows = self.summed(), None, None   # another layout: fold the rows in
        if self.rows is None:
            lead, tokens, channels = shape[:-2], shape[-2], shape[-1]
            self.buffer = torch.zeros(tokens, math.prod(lead), channels, dtype=torch.float32, device=rows.device)
            n = len(lead)
            self.rows = self.buffer.view(tokens, *lead, channels).permute(*range(1, n + 1), 0, n + 1)
            self.reading = (reader, text, grid)
        if weight is None:
            self.rows.add_(rows)
        else:
            self.rows.addcmul_(rows, weight)

    def summed(self) -> torch.Tensor | None:
        """``[count, 1, h, w]``: the blend words' maps (the source's, the target's; then the subtract words'),
        summed over calls, heads and pairs (None: none recorded)."""
        if self.rows is None:
            return self.sums
        reader, text, grid = self.reading
        image = self.buffer[text:] if text else self.buffer
        words = (image.flatten(1) @ reader).T.reshape(-1, 1, *grid)   # [image tokens, maps] as maps: views
        return words if self.sums is None else self.sums + words

    def outside(self, latent_hw: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[2, 1, h, w]`` in {0, 1} of ``dtype`` at latent resolution: where the pair's latents are
        not blended toward the target's: nowhere in the source's row (row 0), outside the blend mask
        in the target's (row 1). The mask: each map 3x3 max-pooled, resized (nearest), divided by its
        maximum and thresholded, the source's OR-ed with the target's; with subtract words, less their
        maps' mask (made the same way but not pooled), as the reference's ``substruct_words``."""
        summed = self.summed()
        if summed is None:
            raise ValueError("local blend: no attention maps were recorded at the blend layers")
        maps = F.interpolate(F.max_pool2d(summed[:2], 3, stride=1, padding=1), size=latent_hw)
        maps = maps / maps.amax(dim=(2, 3), keepdim=True)
        # neither map over the threshold; a map of no words (0 / 0: NaN) is over it nowhere, as in the reference
        outside = maps.gt(self.threshold).any(0, keepdim=True).logical_not()
        if self.count > 2:   # or the subtract words' maps (not pooled) over it
            sub = F.interpolate(summed[2:], size=latent_hw)
            outside |= (sub / sub.amax(dim=(2, 3), keepdim=True)).gt(self.threshold).any(0, keepdim=True)
        return F.pad(outside.to(dtype), (0, 0, 0, 0, 0, 0, 1, 0))   # the source's row: zeros


def blend_reader(pairs: int, heads: int, head_dim: int, own: bool, device=None, count: int = 2) -> torch.Tensor:
    """``[rows * heads * head_dim, count]`` float32: what turns a call's blend rows (``add_rows``; each
    pair's source-query row, then, with ``own``, each pair's target-query row, heads side by side in
    the channels) into the ``count`` maps (``LocalBlendMaps.count``), summed over heads and pairs: map
    ``2j`` is channel ``2j`` of the source rows (the source's words), map ``2j + 1`` their channel
    ``2j + 1`` (the target's words through the edit) plus, with ``own``, channel ``2j + 1`` of the
    target rows (the target's own part); ``j`` 0 the blend words, 1 the subtract words."""
    reader = torch.zeros(pairs * (2 if own else 1), heads, head_dim, count, device=device)
    for c in range(0, count, 2):
        reader[:pairs, :, c, c] = 1.0
        reader[:, :, c + 1, c + 1] = 1.0
    return reader.flatten(0, 2)


def blend_denoised(x: torch.Tensor, denoised: torch.Tensor, outside: torch.Tensor, ratio: float,
                   source_next: torch.Tensor | None = None) -> torch.Tensor:
    """The pair's predictions (row 0 the source, row 1 the target) whose DDIM/Euler steps from ``x``
    (``denoised + ratio (x - denoised)``, ``ratio = sigma_next / sigma < 1``) land on the source's
    next latent and on the blend ``source_next + mask (target_next - source_next)``: each step
    solved for its prediction, ``denoised + outside (source_next - next) / (1 - ratio)`` with
    ``outside`` (``LocalBlendMaps.outside``) 0 in the source's row and ``1 - mask`` in the target's,
    in three arithmetic operations. ``source_next``: the source's next latent where it is known (a flow
    inversion's trajectory), else the source row's own step."""
    nxt = torch.lerp(denoised, x, ratio)
    source = nxt[:1] if source_next is None else source_next
    return torch.addcmul(denoised, outside, source - nxt, value=1.0 / (1.0 - ratio))


@dataclass(frozen=True)
class LocalBlend:
    """A local blend's settings: the blend words' token positions in the source and the target
    prompt, the mask threshold, the fraction of the steps before it starts, the attention
    blocks whose cross-attention maps it reads (latent/4: ``hostkit/layout.map_blocks``), and the
    subtract words' positions (the reference's ``substruct_words``; none by default)."""

    source: tuple[int, ...]
    target: tuple[int, ...]
    threshold: float = 0.3
    start: float = 0.2
    blocks: frozenset = frozenset()
    subtract_source: tuple[int, ...] = ()
    subtract_target: tuple[int, ...] = ()

    def maps(self) -> LocalBlendMaps:
        """A sampling run's empty running sums."""
        return LocalBlendMaps(list(self.source), list(self.target), self.threshold, list(self.subtract_source),
                              list(self.subtract_target))


def local_blend_of(positions_of, words: dict, threshold: float, start: float, blocks: frozenset) -> LocalBlend:
    """The local blend of the nodes' four word inputs (``words``: input name to its comma-separated words):
    ``positions_of(input name, words, "source" or "target")`` gives their token positions in that prompt."""
    sides = (("blend_source_words", "source"), ("blend_target_words", "target"),
             ("blend_subtract_source_words", "source"), ("blend_subtract_target_words", "target"))
    found = [tuple(positions_of(name, words.get(name) or "", side)) for name, side in sides]
    return LocalBlend(found[0], found[1], threshold, start, blocks, found[2], found[3])
