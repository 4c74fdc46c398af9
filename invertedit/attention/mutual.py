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

from .maps import attend, attention_probs


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
        mask = keys if bool(keys.any()) else None  # sampling-path-ok: the masks' token grids live on the CPU
        return attend(attention_probs(q[1:2], k[:1], heads, mask), v[:1])

    fg, bg = restricted(source_fg), restricted(~source_fg)
    return torch.where(target_fg[None, :, None].to(fg.device), fg, bg)
