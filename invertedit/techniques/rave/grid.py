"""RAVE (Kara, Kurtkaya, Yesiltepe, Rehg and Yanardag, "RAVE: Randomized Noise Shuffling for Fast
and Consistent Video Editing with Diffusion Models", CVPR 2024): the grid trick, as the authors'
code (rehg-lab/RAVE, ``pipelines/sd_controlnet_rave.py`` and ``utils/feature_utils.py``) does it.

The clip's frames are tiled ``n x n`` into grid images (row-major: a grid's first row holds its first
``n`` frames), and the UNet denoises each grid as one picture, so that its self-attention spans the
grid's frames: they are drawn alike. Before every step the frames are shuffled (``grid_orders``:
``torch.randperm`` of all frames, composed with the order before, as ``shuffle_latents`` keeps the
latents in the shuffled order), so that over the steps every frame shares a grid with others.

torch only: no host.
"""
from __future__ import annotations

import torch


def grid_orders(seed: int, steps: int, frames: int, shuffle: bool = True) -> torch.Tensor:
    """The frame at each grid position for every step, ``[steps, frames]`` (CPU): position ``p``
    of step ``s`` holds frame ``orders[s, p]``; grid ``j`` holds positions ``j n^2 .. (j+1) n^2 - 1``.
    With ``shuffle``, each step's order is the previous one's permuted by ``torch.randperm(frames)``
    on a generator seeded with ``seed`` (the authors: ``indices = [indices[i] for i in rand_i]``
    before each step's denoising); without, the frames stay in order."""
    g = torch.Generator().manual_seed(int(seed))
    order = torch.arange(frames)  # sampling-path-ok: once per run (memo), CPU draws as the authors'
    rows = []
    for _ in range(steps):
        if shuffle:
            order = order[torch.randperm(frames, generator=g)]  # sampling-path-ok: as above
        rows.append(order)
    return torch.stack(rows)


def to_grids(x: torch.Tensor, order: torch.Tensor, n: int) -> torch.Tensor:
    """Frames ``x`` ``[F, C, h, w]`` tiled into ``F / n^2`` grids ``[G, C, n h, n w]``: grid ``j``
    holds frames ``order[j n^2 : (j+1) n^2]``, row-major."""
    frames, c, h, w = x.shape
    grids = frames // (n * n)
    x = x.index_select(0, order).reshape(grids, n, n, c, h, w)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(grids, c, n * h, n * w)


def from_grids(grids: torch.Tensor, order: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of ``to_grids``: the frames ``[F, C, h, w]`` in their own order."""
    count, c, height, width = grids.shape
    h, w = height // n, width // n
    tiles = grids.reshape(count, c, n, h, n, w).permute(0, 2, 4, 1, 3, 5).reshape(count * n * n, c, h, w)
    return torch.empty_like(tiles).index_copy_(0, order, tiles)
