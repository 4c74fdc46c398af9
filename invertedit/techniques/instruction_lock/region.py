"""Where an instruction edit changed the picture: the region a lock leaves to the instruction, found from an
unlocked run of the editor (Flux.1 Kontext, Qwen-Image-Edit) against its input.

Per latent cell (8 x 8 pixels), the change is the length of the latent's difference across its channels,
averaged over the 3 x 3 cells around it: a cell counts where the editor redrew what is there, while a
shift of a few pixels (what instruction editors do to the whole picture: Qwen-Image #229) moves every
cell's latent a little and no cell much. A cell is in the region where its change is at least
``threshold`` times the largest; the region then grows by ``grow`` cells on every side, so that the lock's
edge falls outside what changed. Plain torch: the host kit hands the latents in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def change_map(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """``[h, w]`` (float32): each cell's change from ``before`` to ``after`` (``[channels, h, w]`` latents), the
    norm of the difference across channels averaged over the 3 x 3 cells around it (fewer at the border)."""
    change = (after.float() - before.float()).square().sum(0).sqrt()
    return F.avg_pool2d(change[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]


def changed_cells(change: torch.Tensor, threshold: float, grow: int) -> torch.Tensor:
    """``[h, w]`` (bool): the cells whose ``change`` is at least ``threshold`` times the largest, grown by ``grow``
    cells on every side (a square window). No cell where nothing changed."""
    top = change.max()
    cells = (change >= threshold * top) & (top > 0)
    if grow:
        cells = F.max_pool2d(cells[None, None].float(), 2 * grow + 1, stride=1, padding=grow)[0, 0] > 0
    return cells
