"""Attention Activation and Suppression (AAS), the self-attention edit of Attentive Eraser (Sun et al.,
"Attentive Eraser: Unleashing Diffusion Model's Object Removal Potential via Self-Attention Redirection
Guidance", AAAI 2025), as the authors' code computes it (``AAS/AAS.py``'s ``AAS.attn_batch`` / ``forward``).

The removal branch's self-attention, on the layers and steps of the schedule:
- suppression of the object's keys: every query's logits get ``finfo(dtype).min`` added on the keys
  inside the object's mask (at the layer's token grid), so nothing attends to the object and its
  region is redrawn from the background (the code adds the dtype's lowest number, not -inf: where a
  grid holds only object tokens the softmax is uniform, not NaN);
- activation (the code's "similarity suppression" for the first ``ss_steps`` steps, ``cur_step <=
  ss_steps``: ten steps at its 9): the object's queries attend with their logits scaled by
  ``ss_scale`` (0.3: a flatter attention over the background, so the hole takes the background's
  average rather than copying one patch), the other queries with the logits as they are; each query
  takes its side's output.
The plain branch (the code's ``out_source``) is ordinary self-attention; so are cross-attention and the
layers and steps outside the schedule.

The object's mask on a token grid is the pixel mask max-pooled to the grid (the code's
``F.max_pool2d(mask, 512 // H).round()``: a cell is the object's when any of its pixels is); the
pixel mask is the user's mask resized to the image (bicubic, as the code's loader), blurred with a
Gaussian of ``blur`` pixels and thresholded at 0.1 (``AAS/data.py``'s ``load_mask``: a dilation).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...attention.maps import compute_dtype, token_grid
from ...attention.policy import AttentionPolicy, Where

#: The code's threshold after the blur (``mask[mask >= 0.1] = 1``): the blur's reach becomes a dilation.
MASK_THRESHOLD = 0.1

#: The cond index of the removal branch in the GUIDER's batch (the plain branch is 0): the rows AAS edits.
REMOVAL = 1


def gaussian_kernel(size: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The 1-D Gaussian of ``size`` taps with torchvision's default sigma for that size
    (``gaussian_blur(kernel_size=k)``: ``0.3 ((k - 1) / 2 - 1) + 0.8``), summing to 1."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def blur(mask: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, 1, H, W]`` blurred as torchvision's ``gaussian_blur(kernel_size=(size, size))``: reflect padding,
    the separable Gaussian."""
    if size <= 1:
        return mask
    k = gaussian_kernel(size, mask.dtype, mask.device)
    pad = size // 2
    x = F.pad(mask, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.reshape(1, 1, 1, size))
    return F.conv2d(x, k.reshape(1, 1, size, 1))


def removal_mask(mask: torch.Tensor, size: tuple[int, int], blur_size: int) -> torch.Tensor:
    """The region to remove at the image's pixels, ``[1, 1, H, W]`` of 0/1 (float32): a MASK (``[H, W]`` or
    ``[1, H, W]``, 0-1) resized to ``size`` (bicubic where it differs), blurred (``blur_size`` taps; 0 or 1:
    none) and thresholded at ``MASK_THRESHOLD``, as the authors' loader prepares it."""
    m = mask.reshape(1, 1, *mask.shape[-2:]).float()
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m, size=size, mode="bicubic", align_corners=False)
    m = blur(m, blur_size)
    return (m >= MASK_THRESHOLD).float()


def pooled(mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """A ``[1, 1, H, W]`` 0/1 mask on an ``hw`` grid, ``[1, 1, h, w]``: a cell is 1 when any of its pixels is
    (the code's ``max_pool2d`` with the image side over the grid side as kernel, then ``round``)."""
    return F.adaptive_max_pool2d(mask, hw).round()


def suppression_bias(object_keys: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[M]`` logits offset: the dtype's lowest number on the object's keys, 0 elsewhere (the code's
    ``mask.masked_fill(mask == 1, torch.finfo(sim.dtype).min)``)."""
    zero = torch.zeros(object_keys.shape, dtype=dtype, device=object_keys.device)
    return zero.masked_fill(object_keys, torch.finfo(dtype).min)


def _heads(t: torch.Tensor, heads: int, dtype: torch.dtype) -> torch.Tensor:
    b, n, hd = t.shape
    return t.reshape(b, n, heads, hd // heads).transpose(1, 2).to(dtype)


def aas_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, object_tokens: torch.Tensor,
                  similarity: bool, ss_scale: float) -> torch.Tensor:
    """The removal branch's self-attention (``[B, N, heads*d]`` each; ``object_tokens``: ``[N]`` bool, the
    object's tokens on this layer's grid). Object keys suppressed; with ``similarity`` (the code's first
    ``ss_steps`` steps) the object's queries attend with ``ss_scale`` times the logits. Computed in at least
    float32 (the code's logits and softmax are in the input's dtype), returned in ``v``'s dtype."""
    work = compute_dtype(q.dtype)
    b, n, hd = q.shape
    qh, kh, vh = (_heads(t, heads, work) for t in (q, k, v))
    bias = suppression_bias(object_tokens.to(q.device), work).reshape(1, 1, 1, -1)
    out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=bias)
    if similarity:
        scaled = F.scaled_dot_product_attention(qh * ss_scale, kh, vh, attn_mask=bias)
        out = torch.where(object_tokens.to(q.device)[None, None, :, None], scaled, out)
    return out.transpose(1, 2).reshape(b, n, hd).to(v.dtype)


@dataclass(frozen=True)
class AasSchedule:
    """Where AAS acts: the steps ``[start_step, end_step)`` of the run and the self-attention layers
    ``[start_layer, end_layer)`` in execution order (the code's ``step_idx`` and ``layer_idx``); the
    object's queries attend with scaled logits while ``step <= ss_steps`` (the code's ``cur_step <=
    self.ss_steps``). Code defaults on its SD path (``inference/DIP.py``): every step (``END_STEP =
    int(strength * 50)``, strength 1 after DDIM inversion), the decoder's layers (7 to 16 of SD's 16;
    SDXL: 34 to 70), ``ss_steps`` 9, ``ss_scale`` 0.3."""
    start_step: int = 0
    end_step: int = 50
    start_layer: int = 7
    end_layer: int = 16
    ss_steps: int = 9
    ss_scale: float = 0.3

    def active(self, step: int, layer: int) -> bool:
        return self.start_step <= step < self.end_step and self.start_layer <= layer < self.end_layer

    def similarity(self, step: int) -> bool:
        return step <= self.ss_steps


class AttentionActivationSuppression(AttentionPolicy[None]):
    """AAS on self-attention: the rows of the removal branch (cond index ``REMOVAL`` of the batch) get
    ``aas_attention`` on the schedule's steps and layers; every other row, layer and step plain attention.
    ``mask``: the region at the image's pixels (``removal_mask``, on the CPU); ``layers``: each (block,
    number, depth) -> its index in execution order. The grid masks are made once per grid and device."""

    pair = False

    def __init__(self, schedule: AasSchedule, layers: dict[tuple[str, int, int], int], mask: torch.Tensor):
        self.schedule, self.layers, self.mask = schedule, layers, mask
        self.grids: dict = {}

    def object_tokens(self, latent_hw: tuple[int, int], tokens: int, device) -> torch.Tensor:
        """``[tokens]`` bool: the object's tokens on the grid of a call of ``tokens`` queries."""
        hw = token_grid(latent_hw, tokens)
        key = (hw, device)
        if key not in self.grids:
            self.grids[key] = pooled(self.mask, hw).flatten().bool().to(device)
        return self.grids[key]

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: None) -> torch.Tensor:
        if where.cross or REMOVAL not in where.chunks or not self.schedule.active(where.step, self.layers[where.layer]):
            return where.attend(q, k, v)
        tokens = self.object_tokens(where.latent_hw, q.shape[1], q.device)
        similarity = self.schedule.similarity(where.step)
        parts = []
        for c, kind in enumerate(where.chunks):
            rows = slice(c * where.rows, (c + 1) * where.rows)
            if kind == REMOVAL:
                parts.append(aas_attention(q[rows], k[rows], v[rows], where.heads, tokens, similarity,
                                           self.schedule.ss_scale))
            else:
                parts.append(where.attend(q[rows], k[rows], v[rows]))
        return parts[0] if len(parts) == 1 else torch.cat(parts)
