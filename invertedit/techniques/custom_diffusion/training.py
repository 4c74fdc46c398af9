"""Custom Diffusion (Kumari et al., "Multi-Concept Customization of Text-to-Image Diffusion", CVPR 2023).

A subject shown in a few photos is captured in the smallest part of the model that can hold it: the
key and value projections of the UNet's cross-attention layers (the only weights that see the
text), plus the vector of a new modifier word ("<new1>", from a rare initializer word "ktn"), with
the prior-preservation loss of DreamBooth on class images. What the reference code does and this
module reproduces (diffusers' ``examples/custom_diffusion/train_custom_diffusion.py``, read, not
copied):

- **scale augmentation** (on by default, off with ``--noaug``): each instance image is resized to a
  random side ``scale``, with probability 0.66 uniform in ``[size // 3, size]`` (the image pasted at
  a random place of a mid-grey canvas of side ``size``), else uniform in ``[1.2 size, 1.4 size)`` (a
  random ``size`` crop of it); ``draw_placement`` and ``place``;
- **a validity mask** at the latent's resolution: inside the pasted image, one latent cell in from
  each edge (all ones for a crop); the instance loss is the squared error's masked sum per image over
  the mask's cell count, averaged over the batch (``masked_loss``: the count is of the mask's one
  channel, so the per-image value is the sum over the latent's channels of a per-channel masked mean,
  as the script computes it);
- **caption prefixes**: a pasted image smaller than 0.6 size gets "a far away " or "very small "
  before its prompt, a crop "zoomed in " or "close up " (``PREFIXES``);
- a random left-right flip with probability 0.5 when ``--hflip`` (the README's command uses it), on
  the instance images before the scaling and on the class images;
- the first token's key and value (the start token's) take no gradient (``first_token_detached``);
- the prior loss is the plain mean squared error on the class rows, weighted by ``prior_weight``;
- AdamW (weight decay 1e-2) over the full key / value matrices (the decay shrinks the whole matrix,
  not only its change: ``full_matrix_decay``) and the token table, gradients clipped to norm 1.

torch only: no host imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

SMALL_PREFIXES = ("a far away ", "very small ")
LARGE_PREFIXES = ("zoomed in ", "close up ")
PREFIXES = ("",) + SMALL_PREFIXES + LARGE_PREFIXES   # a caption's prefix, by index
PASTE_P = 0.66                                        # the script's chance of a pasted (not cropped) image


@dataclass(frozen=True)
class Placement:
    """One instance image's augmentation: flipped or not, resized to ``scale`` (square), put at
    (``top``, ``left``) of the canvas (pasted) or cropped from there (``scale`` above the size), and
    its caption's prefix (an index into ``PREFIXES``)."""
    flip: bool
    scale: int
    top: int
    left: int
    prefix: int


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """Uniform in ``[low, high)`` (numpy's ``randint``)."""
    return int(torch.randint(low, high, (1,), generator=generator, device=generator.device))  # sampling-path-ok: a CPU generator, once per image before training


def draw_placement(size: int, generator: torch.Generator, augment: bool = True, hflip: bool = True) -> Placement:
    """One instance image's augmentation for a canvas of side ``size``, drawn from ``generator`` in
    the script's order (flip, paste-or-crop, scale, top, left, prefix)."""
    flip = hflip and bool(torch.rand(1, generator=generator, device=generator.device) < 0.5)  # sampling-path-ok: as above
    scale = size
    if augment:
        paste = bool(torch.rand(1, generator=generator, device=generator.device) < PASTE_P)  # sampling-path-ok: as above
        scale = _randint(size // 3, size + 1, generator) if paste else _randint(int(1.2 * size), int(1.4 * size),
                                                                               generator)
    outer, inner = (scale, size) if scale > size else (size, scale)
    top, left = _randint(0, outer - inner + 1, generator), _randint(0, outer - inner + 1, generator)
    prefix = 0
    if scale < 0.6 * size:
        prefix = 1 + _randint(0, len(SMALL_PREFIXES), generator)
    elif scale > size:
        prefix = 1 + len(SMALL_PREFIXES) + _randint(0, len(LARGE_PREFIXES), generator)
    return Placement(flip, scale, top, left, prefix)


def place(image: torch.Tensor, placement: Placement, size: int, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the training image, its validity mask) of ``image`` (``[H, W, C]`` in [0, 1], square, side
    ``size``) under ``placement``: flipped, resized to ``scale`` (bilinear with PIL's antialiasing,
    rounded to 8 bits as the script's uint8 array is), pasted on a mid-grey canvas (the script's zeros
    in [-1, 1]) or cropped; the mask ``[size // factor, size // factor]`` is 1 where the loss counts."""
    x = image.flip(1) if placement.flip else image
    scale, top, left = placement.scale, placement.top, placement.left
    resized = F.interpolate(x.permute(2, 0, 1)[None].float(), size=(scale, scale), mode="bilinear",
                            align_corners=False, antialias=True)[0].permute(1, 2, 0)
    resized = (resized.clamp(0, 1) * 255).round() / 255
    cells = size // factor
    if scale > size:
        return resized[top:top + size, left:left + size].to(image.dtype), image.new_ones(cells, cells)
    canvas = torch.full((size, size, image.shape[-1]), 0.5, dtype=resized.dtype, device=image.device)
    canvas[top:top + scale, left:left + scale] = resized
    mask = image.new_zeros(cells, cells)
    mask[top // factor + 1:(top + scale) // factor - 1, left // factor + 1:(left + scale) // factor - 1] = 1.0
    return canvas.to(image.dtype), mask


def smallest_mask(size: int, factor: int) -> int:
    """The fewest cells the mask of a pasted image can have at side ``size`` (the smallest scale at
    the worst offset): 0 means an image this small can give an empty mask (a NaN loss)."""
    scale = size // 3
    worst = min(((top + scale) // factor - 1 - (top // factor + 1)) for top in range(0, size - scale + 1))
    return max(worst, 0) ** 2


def masked_loss(eps: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, instances: int, prior_weight: float,
                weight: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """(loss, instance loss, prior loss) of a batch whose first ``instances`` rows are instance images
    (``mask`` ``[instances, h, w]`` their validity masks) and the rest class images; ``weight`` a
    per-row weight of the squared error (``dreambooth.v_weight`` for v models). Float32."""
    err = (eps.float() - noise.float()) ** 2
    if weight is not None:
        err = err * weight.float().reshape(-1, *([1] * (err.dim() - 1)))
    m = mask.float().to(err.device).unsqueeze(1)
    instance = ((err[:instances] * m).sum((1, 2, 3)) / m.sum((1, 2, 3))).mean()
    if instances == err.shape[0]:
        return instance, instance, None
    prior = err[instances:].mean()
    return instance + prior_weight * prior, instance, prior


def first_token_detached(t: torch.Tensor) -> torch.Tensor:
    """``t`` (``[batch, tokens, width]``: a cross-attention key or value) with the first token's rows
    cut from the gradient, its values unchanged."""
    return torch.cat([t[:, :1].detach(), t[:, 1:]], dim=1)


def full_matrix_decay(delta: torch.Tensor, base: torch.Tensor, lr: float, weight_decay: float) -> None:
    """The part of AdamW's decoupled weight decay that an optimiser over the change ``delta`` alone
    misses when the reference decays the whole matrix ``base + delta``: ``delta -= lr * wd * base``
    (in place, after the optimiser's step)."""
    with torch.no_grad():
        delta.sub_(base.to(delta), alpha=lr * weight_decay)
