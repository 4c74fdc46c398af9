"""Recording cross-attention maps inside the host: Attention Store's per-word maps and their
heatmap pictures, LEDITS++'s per-concept maps at the mask resolution (into the run's state of
its policy, ``guidance/ledits.py``)."""
from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F
from comfy.ldm.modules.attention import optimized_attention
from PIL import Image, ImageDraw

from ..attention.maps import attention_probs, token_grid
from ..guidance.ledits import LeditsPolicy
from .run_state import run_state


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


class RecordConceptMaps:
    """attn2 replace patch at the mask resolution: plain attention, and for each concept chunk of
    the batch (``cond_or_uncond`` indexes the guider's conds) the sum of its tokens' maps, into
    the run's ``ConceptMaps`` of ``policy`` (the LEDITS++ policy that takes them)."""

    def __init__(self, policy: LeditsPolicy, tokens: dict[int, list[int]], factor: int):
        self.policy, self.tokens, self.factor = policy, tokens, factor

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        out = host_attention(q, k, v, extra_options)
        latent_hw = tuple(extra_options["original_shape"][-2:])
        h, w = token_grid(latent_hw, q.shape[1])
        if 2 ** round(math.log2(latent_hw[0] / h)) != self.factor:
            return out
        store = run_state(extra_options, self.policy, self.policy.make_state, node=self.policy.name)
        chunks = extra_options.get("cond_or_uncond", [0])
        rows = q.shape[0] // len(chunks)
        for chunk, index in enumerate(chunks):
            positions = self.tokens.get(index)
            if positions is None:
                continue
            probs = patch_maps(q[chunk * rows:(chunk + 1) * rows], k[chunk * rows:(chunk + 1) * rows], extra_options,
                               dtype=torch.float32)
            store.add(index, probs[..., positions].sum(-1).sum(1).reshape(rows, h, w), heads)
        return out
