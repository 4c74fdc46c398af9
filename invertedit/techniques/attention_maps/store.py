"""Aggregating cross-attention maps into per-word heatmaps and masks (Prompt-to-Prompt's
AttentionStore and LocalBlend).

Each recorded map is ``[heads, N, T]`` for N latent tokens and T text tokens. Maps are
averaged over heads, laid out on the latent grid, resized to one side, and averaged over
layers and steps (the caller chooses the layers: the reference's are those at latent/4); a word's map is the sum of its tokens' maps. A mask is the paper's local
blend: max-pool (3x3), normalise by the maximum, threshold (paper: 0.3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...attention.maps import compute_dtype, joint_text_probs, token_grid
from ...attention.policy import AttentionPolicy, JointWhere, Where


class MapRecorder:
    """Sums cross-attention maps resized to ``side`` x ``side``: call ``add`` per attention call."""

    def __init__(self, latent_hw: tuple[int, int], side: int):
        self.latent_hw, self.side = latent_hw, side
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, probs: torch.Tensor) -> None:
        """``probs``: ``[heads, N, T]`` maps of one row."""
        heads, n, t = probs.shape
        h0, w0 = self.latent_hw
        h, w = token_grid(self.latent_hw, n)
        grid = probs.float().mean(0).T.reshape(1, t, h, w)
        grid = F.interpolate(grid, size=(self.side, self.side * w0 // h0), mode="bilinear", align_corners=False)[0]
        self.total = grid if self.total is None else self.total + grid
        self.count += 1

    def average(self) -> torch.Tensor:
        """``[T, side, side']`` mean map per text token."""
        if self.total is None:
            raise ValueError("no attention maps were recorded")
        return self.total / self.count


class StoreMaps(AttentionPolicy[None]):
    """On cross-attention: plain attention, with every row's maps added to ``recorder`` (the
    reference's ``AttentionStore``; its pass is conditional only, so every row counts)."""

    pair = False

    def __init__(self, recorder: MapRecorder):
        self.recorder = recorder

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: None) -> torch.Tensor:
        for row in range(q.shape[0]):
            self.recorder.add(where.maps(q[row:row + 1], k[row:row + 1])[0])
        return where.attend(q, k, v)


class StoreJointMaps(AttentionPolicy[None]):
    """On a diffusion transformer's joint attention: plain attention, with every row's image-to-text
    maps (``maps.joint_text_probs``) added to ``recorder``."""

    pair = False

    def __init__(self, recorder: MapRecorder):
        self.recorder = recorder

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: JointWhere,
                  state: None) -> torch.Tensor:
        for row in range(q.shape[0]):
            self.recorder.add(joint_text_probs(q[row], k[row], where.text))
        return where.attend(q, k, v)


class StoreCrossMaps(AttentionPolicy[None]):
    """On Wan's cross-attention (``hostkit/wan_attention.py``: the clip's tokens, frames x rows x columns, attending
    to the text's): plain attention, with every row's maps, ``softmax(q k^T / sqrt(d))`` ``[heads, tokens, text]``
    averaged over the clip's latent frames, added to ``recorder``: one map per word for the whole clip. One head at a
    time in at least float32, as ``maps.joint_text_probs``."""

    pair = False

    def __init__(self, recorder: MapRecorder):
        self.recorder = recorder

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where, state: None) -> torch.Tensor:
        work = compute_dtype(q.dtype)
        scale = q.shape[-1] ** -0.5
        for row in range(q.shape[0]):
            probs = torch.stack([torch.softmax((q[row, h].to(work) @ k[row, h].to(work).T) * scale, dim=-1)
                                 for h in range(q.shape[1])])
            self.recorder.add(probs.unflatten(1, (where.frames, -1)).mean(1))
        return where.attend(q, k, v)


def word_maps(maps: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """``[words, h, w]``: each word's map is the sum of its token positions' maps."""
    return torch.stack([maps[idx].sum(0) for idx in groups])


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] by its own maximum."""
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    return maps / peak[:, None, None]


def local_blend_mask(maps: torch.Tensor, threshold: float = 0.3, pool: int = 3) -> torch.Tensor:
    """Prompt-to-Prompt's local blend mask from ``[words, h, w]`` maps: their sum, max-pooled,
    normalised by its maximum, thresholded. Returns ``[h, w]`` in {0, 1}."""
    total = maps.sum(0, keepdim=True)[None]
    pooled = F.max_pool2d(total, pool, stride=1, padding=pool // 2)[0, 0]
    pooled = pooled / pooled.max().clamp_min(1e-12)
    return (pooled > threshold).float()
