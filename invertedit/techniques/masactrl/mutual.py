"""Mutual self-attention (Cao et al., "MasaCtrl: Tuning-Free Mutual Self-Attention Control for
Consistent Image Synthesis and Editing", 2023): from a start step and a start layer, the
target's self-attention queries read the source's keys and values, so the edited image takes
its content (textures, identity) from the source while its own prompt shapes the layout.
Paper defaults for SD1.5: from step 4 and from layer 10 of the UNet's 16 attention layers.

The mask-guided version (the paper's Section 3.3) keeps object and background apart: with a
foreground mask of the source and one of the target, the target's foreground queries attend
only to the source's foreground keys, its background queries only to the source's background.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...attention.maps import attend, attention_probs, token_grid
from ...attention.policy import AttentionPolicy, Where, rows_from_source


@dataclass(frozen=True)
class MutualSchedule:
    start_step: int = 4
    start_layer: int = 10

    def active(self, step: int, layer: int) -> bool:
        return step >= self.start_step and layer >= self.start_layer


def mutual_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows ``[0]`` source, ``[1]`` target: the target's queries on the source's keys and values."""
    return attend(attention_probs(q[1:2], k[:1], heads), v[:1])


def masked_mutual_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, source_fg: torch.Tensor,
                         target_fg: torch.Tensor) -> torch.Tensor:
    """Mask-guided mutual self-attention: ``source_fg`` / ``target_fg`` are ``[N]`` bool masks of the
    foreground on this layer's token grid. A side of the source with no tokens is not restricted."""
    def restricted(keys: torch.Tensor) -> torch.Tensor:
        # an empty side attends to every key: the mask as a tensor, no branch on its values (no wait for the
        # device, no graph break under the host's TorchCompileModel)
        return attend(attention_probs(q[1:2], k[:1], heads, keys | ~keys.any()), v[:1])

    fg, bg = restricted(source_fg), restricted(~source_fg)
    return torch.where(target_fg[None, :, None].to(fg.device), fg, bg)


def grid_mask(mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """A MASK (``[H, W]`` or ``[1, H, W]``, any size) as a ``[h*w]`` bool mask on a token grid (area, > 0.5)."""
    small = F.interpolate(mask.reshape(1, 1, *mask.shape[-2:]).float(), size=hw, mode="area")
    return (small > 0.5).flatten()


class MutualSelfAttention(AttentionPolicy[None]):
    """On self-attention: in every chunk's (source, target) rows, the target attends to the
    source's keys and values once the step and layer are past the schedule's start; with
    ``masks`` (source and target foreground), foreground to foreground and background to
    background. ``layers``: each (block, number, depth) -> its index in execution order."""

    def __init__(self, schedule: MutualSchedule, layers: dict[tuple[str, int, int], int],
                 masks: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.schedule, self.layers, self.masks = schedule, layers, masks
        self.grids: dict = {}

    def token_masks(self, latent_hw: tuple[int, int], tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The masks on the token grid of a call of ``tokens`` query tokens (made once per grid)."""
        hw = token_grid(latent_hw, tokens)
        if hw not in self.grids:
            self.grids[hw] = tuple(grid_mask(m, hw) for m in self.masks)
        return self.grids[hw]

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: None) -> torch.Tensor:
        if not self.schedule.active(where.step, self.layers[where.layer]):
            return where.attend(q, k, v)
        if not self.masks:   # the target's queries on the source's keys and values: one call for all rows
            return where.attend(q, *rows_from_source(where, k, v, kinds=(0, 1)))
        out = where.attend(q, k, v).clone()
        masks = self.token_masks(where.latent_hw, q.shape[1])
        if k.shape[1] != q.shape[1]:   # keys of several frames (Cross-Frame Attention): the source mask on each
            masks = (masks[0].repeat(k.shape[1] // q.shape[1]), masks[1])
        frames = where.rows // 2   # a clip's pair in blocks: target row F + f reads source row f
        for c in range(len(where.chunks)):   # conditional and unconditional pairs alike, as in the paper
            s = c * where.rows
            for f in range(frames):
                pair = slice(s + f, s + f + frames + 1, frames)   # rows s + f and s + F + f (a view)
                target = masked_mutual_target(q[pair], k[pair], v[pair], where.heads, *masks)
                out[s + frames + f] = target[0].to(out.dtype)
        return out
