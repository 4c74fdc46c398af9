"""A view set on the SD family: an IMAGE batch of V >= 2 views of one asset, a LATENT ``[V, C, h, w]``,
inverted in one batched run and edited as a pair in blocks exactly as a clip is (``frames.py``:
row r of a chunk is view r % V of branch r // V).

Cross-view attention (``attention/cross_view.py``, GaussCtrl's latent alignment) computes every
self-attention call of the UNet from the call's own queries, keys and values and those of the
reference views' rows. It sits where the host runs the attention itself (its
``optimized_attention_override``), so every attn1 replace policy that hands its queries, keys and
values to the host's attention (Prompt-to-Prompt's, Plug-and-Play's, MasaCtrl's ``where.attend``)
is aligned too, whichever node was applied first. An ``attn1_patch`` arms it at every
self-attention layer and an ``attn1_output_patch`` disarms it after, so cross-attention and every
other attention call of the model run as they were."""
from __future__ import annotations

import torch

from ..attention.cross_view import ReferenceIndex, aligned_attention
from .errors import NodeInputError

OVERRIDE = "optimized_attention_override"


def view_count(node: str, name: str, samples: torch.Tensor) -> int:
    """The view count of a view set's LATENT ``samples`` (its batch), refused below 2."""
    if samples.ndim != 4:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}; connect a view set's LATENT "
                                   f"[views, channels, height, width] (VAE Encode of the views, or an inverter's "
                                   f"LATENT).")
    if samples.shape[0] < 2:
        raise NodeInputError(node, f"input '{name}' holds {samples.shape[0]} view; connect 2 views or more (an IMAGE "
                                   f"batch of the views of one asset: an animated image in Load Image, Batch Images "
                                   f"of single views, or SV3D's orbit, through VAE Encode).")
    return samples.shape[0]


class CrossViewAttention:
    """The host's attention override of a view set's model: while armed (inside a self-attention
    layer) it runs ``aligned_attention`` with the reference rows of the call's layout (an index made
    once per layout and device); else the attention as it was (a previous override, or the host's)."""

    def __init__(self, views: int, refs: tuple[int, ...], self_weight: float, mode: str, node: str, previous=None):
        self.views, self.refs, self.self_weight, self.mode, self.node = views, refs, self_weight, mode, node
        self.previous = previous
        self.armed = False
        self.index = ReferenceIndex(refs, views)

    # the attn1_patch and attn1_output_patch: the self-attention layer's span
    def arm(self, n, context, value, extra_options):
        self.armed = True
        return n, context, value

    def disarm(self, n, extra_options):
        self.armed = False
        return n

    def _plain(self, func, *args, **kwargs):
        if self.previous is not None:
            return self.previous(func, *args, **kwargs)
        return func(*args, **kwargs)

    def __call__(self, func, q, k, v, heads, *args, **kwargs):
        if not self.armed or args or kwargs.get("mask") is not None or kwargs.get("skip_reshape"):
            return self._plain(func, q, k, v, heads, *args, **kwargs)
        options = kwargs.get("transformer_options") or {}
        chunks = len(options.get("cond_or_uncond", [0]))
        batch = q.shape[0]
        rows = batch // chunks
        if batch % chunks or rows not in (self.views, 2 * self.views):
            raise NodeInputError(self.node, f"the sampler runs a batch of {batch} rows in {chunks} chunk(s), not the "
                                            f"view set's {self.views} views (or {2 * self.views}: a source/target "
                                            f"pair of them); connect the same view set's LATENT to this node and the "
                                            f"sampler (input 'latent' sets the view count).")
        return aligned_attention(q, k, v, self.index(chunks, rows, q.device), len(self.refs), self.self_weight,
                                 lambda q_, k_, v_: self._plain(func, q_, k_, v_, heads, **kwargs), self.mode)


def cross_view_model(model, views: int, refs: tuple[int, ...], self_weight: float, mode: str, node: str):
    """A clone of ``model`` whose every UNet self-attention is a view set's cross-view attention
    (``CrossViewAttention``: the host's attention override, armed by an ``attn1_patch`` and disarmed
    by an ``attn1_output_patch``); an override already on the model runs inside it."""
    m = model.clone()
    options = m.model_options.setdefault("transformer_options", {})
    views_attention = CrossViewAttention(views, refs, self_weight, mode, node, options.get(OVERRIDE))
    options[OVERRIDE] = views_attention
    m.set_model_attn1_patch(views_attention.arm)
    m.set_model_attn1_output_patch(views_attention.disarm)
    return m
