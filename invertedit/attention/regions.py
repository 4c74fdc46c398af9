"""A painted region as a diffusion transformer's latent cells and tokens: the mask scaled to the latent as
KV-Edit's code scales it (``Xilluill/KV-Edit``: bilinear, corners not aligned, set where above 0), and the tokens
whose patch holds any of its cells. Shared by the editors that remake a region of an image's tokens (KV-Edit,
Region Lock)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def latent_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The user's mask ``[1, H, W]`` as the latent's cells to edit ``[1, 1, h, w]`` (bool): scaled
    bilinearly (corners not aligned) and set where above 0, as KV-Edit's code does."""
    scaled = F.interpolate(mask[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return scaled > 0


def edited_tokens(cells: torch.Tensor, patch: int) -> torch.Tensor:
    """The image tokens ``[h/p * w/p]`` (bool, in rows) a ``[1, 1, h, w]`` cell mask edits: those
    with any masked cell in their ``patch`` x ``patch`` square."""
    return F.max_pool2d(cells.float(), patch, patch, ceil_mode=True).flatten() > 0
