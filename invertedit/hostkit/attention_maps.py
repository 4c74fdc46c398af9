"""Attention maps inside the host: the host's own attention inside a replace patch, the maps of a
layer's queries on its keys, upcast as the layer asks, and heatmap pictures of per-word maps
(Attention Store, LEDITS++'s concept maps)."""
from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from comfy.ldm.modules.attention import optimized_attention
from PIL import Image, ImageDraw

from ..attention.maps import attention_probs


def _takes_options(fn) -> bool:
    """Whether the host's attention function takes ``transformer_options`` (0.3.6x and later)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "transformer_options" or p.kind is p.VAR_KEYWORD for p in params)


_PASS_OPTIONS = _takes_options(optimized_attention)


def host_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict) -> torch.Tensor:
    """Plain attention inside a replace patch, as the host's own layer would run it: its
    ``optimized_attention`` with the layer's ``attn_precision`` (float32 for SD2.x) and the
    transformer options (so an ``optimized_attention_override`` acts as well)."""
    options = {"transformer_options": extra_options} if _PASS_OPTIONS else {}
    return optimized_attention(q, k, v, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
                               **options)


def patch_maps(q: torch.Tensor, k: torch.Tensor, extra_options: dict, key_mask: torch.Tensor | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
    """The maps of ``q`` on ``k`` inside a replace patch, upcast as the layer's ``attn_precision``
    says (and always to float32 for half-precision inputs: ``attention/maps.py``)."""
    return attention_probs(q, k, extra_options["n_heads"], key_mask, precision=extra_options.get("attn_precision"),
                           dtype=dtype)


def heatmaps(maps: torch.Tensor, labels: list[str], size: tuple[int, int], image: torch.Tensor | None) -> torch.Tensor:
    """``[words, H, W, 3]`` heat overlays (normalised maps, hot colours) with the word written on each.
    An output stage: the pictures are drawn with PIL on the CPU, so maps and image move there first
    (the maps come from the model's device; the image may be on another)."""
    maps = maps.detach().float().cpu()  # output: IMAGE pictures are drawn on the CPU
    heat = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)
    colour = torch.stack([heat.sqrt(), heat, heat ** 3], dim=-1)
    base = image[0].detach().float().cpu() if image is not None else torch.full((*size, 3), 0.5)  # output: as above
    if base.shape[:2] != tuple(size):
        base = F.interpolate(base.permute(2, 0, 1)[None], size=size, mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    out = []
    for c, label in zip(colour, labels):
        mixed = (0.3 * base + 0.7 * c).clamp(0, 1)
        pil = Image.fromarray((mixed.numpy() * 255).astype(np.uint8))  # output: as above
        draw = ImageDraw.Draw(pil)
        draw.rectangle([0, 0, 7 * len(label) + 6, 14], fill=(0, 0, 0))
        draw.text((3, 2), label, fill=(255, 255, 255))
        out.append(torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0))
    return torch.stack(out)
