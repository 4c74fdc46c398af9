"""A painted region checked and scaled to a latent's cells, for the editors that remake a region and keep the rest
(KV-Edit, Region Lock): the node's own refusals of an empty, misshapen, too thin or whole mask."""
from __future__ import annotations

import torch

from ..attention.regions import latent_mask
from .errors import NodeInputError, check_finite_tensor


#: How a user paints the mask (Load Image's MASK is what its mask editor paints)
PAINT = ("right click the image in Load Image > Open in MaskEditor, paint over the region to edit and save; connect "
         "Load Image's MASK")


def cell_mask(node: str, mask, latent_hw: tuple[int, int], device, whole: str = "use FlowEdit to edit the whole "
              "image") -> torch.Tensor:
    """The MASK ``[1, H, W]`` (or ``[H, W]``) as the latent cells to edit ``[1, 1, h, w]``, checked, for ``node`` (an
    editor that remakes the masked region and keeps the rest): any size of the image's shape (Load Image's MASK,
    painted on the image before it is scaled), scaled to the latent. An empty one first (Load Image gives a 64x64
    one of 0 for an image without a mask painted), then one of another shape, one that marks no cell, one that
    marks every cell (``whole``: what edits the whole image instead)."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        raise NodeInputError(node, f"input 'mask' is {type(mask).__name__}"
                                   f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else ''}; a MASK [1, height, "
                                   f"width] of the region to edit is needed (Load Image's mask, a painted mask).")
    mask = mask[None] if mask.ndim == 2 else mask
    if mask.shape[0] != 1:
        raise NodeInputError(node, f"input 'mask' holds {mask.shape[0]} masks; give one (the region to edit).")
    check_finite_tensor(node, "input 'mask'", mask, "give a mask with values from 0 to 1.")
    if not bool((mask > 0).any()):   # sampling-path-ok: once per node execution
        raise NodeInputError(node, f"input 'mask' is empty (all 0): nothing is painted, and {node} remakes only the "
                                   f"masked region; paint it: {PAINT}.")
    h, w = latent_hw
    if abs(mask.shape[1] / mask.shape[2] - h / w) > 0.02 * h / w:
        raise NodeInputError(node, f"input 'mask' is {mask.shape[2]}x{mask.shape[1]} and the image "
                                   f"{w * 8}x{h * 8}: their shapes differ; give the mask painted on the image that is "
                                   f"edited ({PAINT}; scale the image keeping its shape).")
    cells = latent_mask(mask.to(device), (h, w))
    if not bool(cells.any()):   # sampling-path-ok: once per node execution
        raise NodeInputError(node, f"input 'mask' marks no cell of the {w}x{h} latent (what is painted is too thin); "
                                   f"paint the region to edit wider: {PAINT}.")
    if bool(cells.all()):   # sampling-path-ok: once per node execution
        raise NodeInputError(node, f"input 'mask' covers the whole image: {node} keeps the background outside the "
                                   f"mask and there is none; paint only the region to edit ({PAINT}), or {whole}.")
    return cells
