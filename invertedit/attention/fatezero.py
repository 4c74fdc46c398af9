"""FateZero's attention fusion (Qi et al., "FateZero: Fusing Attentions for Zero-shot Text-based
Video Editing", ICCV 2023), the math of the authors' ``AttentionControlEdit.forward`` and
``SpatialBlender`` (``video_diffusion/prompt_attention/attention_util.py``, ``spatial_blend.py``):
the edit reads the source's attention maps stored during the inversion, at the same step.

- Cross-attention: Prompt-to-Prompt's edit of the maps from the source's (replace: ``P_s @ mapper``;
  refine: ``P_s[..., mapper] * alphas + P_t * (1 - alphas)``), mixed with the target's own by the
  step's word alphas (``cross_replace``): ``alpha * edited + (1 - alpha) * P_t``.
- Self-attention, for the steps of ``self_replace``: the source's maps, or with the blend words
  (the authors' ``blend_self_attention``) ``mask * P_t + (1 - mask) * P_s``, where the mask is
  where the source's cross-attention of the blend words is (``fusion_mask``: the step's maps of
  the 16x16 cross-attention layers, the words' columns summed, averaged over heads and layers,
  max-pooled 3x3, resized to the layer's grid, divided by each frame's maximum, above ``th``;
  the authors' ``blend_th`` default 0.3).
- Only layers of at most 32 x 32 query tokens are edited (the authors' ``attn.shape[-2] <= 32 ** 2``):
  at SD1.5 512 px the 64 x 64 layers keep the target's own maps.

Maps are ``[frames, heads, queries, keys]`` float tensors; with sparse-causal attention the
self-attention keys are the anchors' (``cross_frame.py``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: the largest query count a layer FateZero edits has (32 x 32)
MAX_TOKENS = 32 ** 2


def edits_layer(queries: int) -> bool:
    """Whether FateZero edits a layer of ``queries`` query tokens."""
    return queries <= MAX_TOKENS


def fuse_cross_replace(target: torch.Tensor, source: torch.Tensor, mapper: torch.Tensor,
                       alpha: torch.Tensor) -> torch.Tensor:
    """Replace: the target's maps are the source's through the word-swap ``mapper`` ``[M, M]``,
    mixed with its own by ``alpha`` ``[M]`` (the step's word alphas)."""
    edited = torch.einsum("thpw,wn->thpn", source.to(target.dtype), mapper.to(target.dtype))
    return edited * alpha + (1 - alpha) * target


def fuse_cross_refine(target: torch.Tensor, source: torch.Tensor, mapper: torch.Tensor, alphas: torch.Tensor,
                      alpha: torch.Tensor) -> torch.Tensor:
    """Refine: target token ``n`` takes the source's token ``mapper[n]`` where ``alphas[n]`` is 1, its own
    elsewhere; mixed with its own by the step's word alphas ``alpha``."""
    edited = source.to(target.dtype)[..., mapper] * alphas + target * (1 - alphas)
    return edited * alpha + (1 - alpha) * target


def fusion_mask(maps: list[torch.Tensor], words: torch.Tensor, hw: tuple[int, int], th: float) -> torch.Tensor:
    """``[frames, h * w]`` float: 1 where the blend ``words`` (``[M]``, 1 on their tokens) are in the
    source's cross-attention ``maps`` (the step's square layers, each ``[frames, heads, r * r, M]``), on
    the ``hw`` grid of the layer being edited."""
    grids = []
    for m in maps:
        side = int(round(m.shape[2] ** 0.5))
        grids.append(m.unflatten(2, (side, side)).transpose(0, 1))   # [heads, frames, r, r, M]
    stacked = torch.cat(grids).float()                                # [heads x layers, frames, r, r, M]
    found = (stacked * words.to(stacked)).sum(-1).mean(0)            # [frames, r, r]
    found = F.max_pool2d(found[None], (3, 3), (1, 1), padding=(1, 1))
    mask = F.interpolate(found, size=hw)[0]                          # [frames, h, w]
    mask = mask / mask.amax(dim=(-2, -1), keepdim=True)
    return mask.gt(th).float().flatten(1)


def fuse_self(target: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The source's self-attention maps, or with ``mask`` (``[frames, queries]``) the target's own inside it."""
    source = source.to(target.dtype)
    if mask is None:
        return source
    m = mask.to(target.dtype)[:, None, :, None]
    return m * target + (1 - m) * source
