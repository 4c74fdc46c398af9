"""Attention maps computed explicitly.

No fused attention kernel (SDPA, xformers, flash) returns its probabilities, so a policy that
reads or replaces maps computes ``softmax(q k^T / sqrt(d))`` itself, only for the rows it
edits, and only inside the current attention call. It upcasts as the host's attention does
with ``attn_precision`` float32 (logits and softmax in float32, maps cast back), always for
half-precision inputs.
"""
from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype, precision: torch.dtype | None = None) -> torch.dtype:
    """The dtype explicit maps are computed in: at least float32 (half-precision logits overflow
    or drop small probabilities, which the host's fp32 ``attn_precision`` for SD2.x is there to
    avoid), and at least ``precision`` (the host's ``attn_precision``) when one is given."""
    out = torch.promote_types(dtype, torch.float32)
    return out if precision is None else torch.promote_types(out, precision)


def attention_probs(q: torch.Tensor, k: torch.Tensor, heads: int, key_mask: torch.Tensor | None = None,
                    precision: torch.dtype | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[B, N, heads*d]`` queries and ``[B, M, heads*d]`` keys to ``[B, heads, N, M]`` maps;
    with ``key_mask`` (``[M]`` bool, some True) only those keys are attended to.

    The logits and the softmax are computed in ``compute_dtype(q.dtype, precision)``: float32
    for half-precision inputs whatever the host's ``attn_precision`` says. The maps come back
    in ``dtype``, by default the inputs' (as the host's attention casts its maps to the values')."""
    b, n, hd = q.shape
    d = hd // heads
    out_dtype = dtype or q.dtype
    work = compute_dtype(q.dtype, precision)
    q = q.reshape(b, n, heads, d).transpose(1, 2).to(work)
    k = k.reshape(b, k.shape[1], heads, d).transpose(1, 2).to(work)
    logits = (q @ k.transpose(-1, -2)) * d ** -0.5
    if key_mask is not None:
        logits = logits.masked_fill(~key_mask.to(logits.device), float("-inf"))
    return torch.softmax(logits, dim=-1).to(out_dtype)


def attend(probs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply ``[B, heads, N, M]`` maps to ``[B, M, heads*d]`` values: ``[B, N, heads*d]``, in the
    values' dtype (as the host's attention does)."""
    b, heads, n, m = probs.shape
    d = v.shape[-1] // heads
    out = probs.to(v.dtype) @ v.reshape(b, m, heads, d).transpose(1, 2)
    return out.transpose(1, 2).reshape(b, n, heads * d)


def token_grid(latent_hw: tuple[int, int], tokens: int) -> tuple[int, int]:
    """The (h, w) grid of an attention layer with ``tokens`` image tokens in a UNet whose input
    latent is ``latent_hw`` (each level halves the sides)."""
    h0, w0 = latent_hw
    scale = (h0 * w0 / tokens) ** 0.5
    return round(h0 / scale), round(w0 / scale)


def joint_text_probs(q: torch.Tensor, k: torch.Tensor, text: int) -> torch.Tensor:
    """A diffusion transformer's cross-attention maps: of one row's joint attention (``q``, ``k``
    ``[heads, tokens, d]``, the ``text`` tokens first), the image queries' probabilities on the
    text keys, ``[heads, image tokens, text]``, from the softmax over every key (text and image),
    in at least float32. One head at a time, so a megapixel's maps take one head's memory."""
    work = compute_dtype(q.dtype)
    scale = q.shape[-1] ** -0.5
    out = []
    for h in range(q.shape[0]):
        logits = (q[h, text:].to(work) @ k[h].to(work).T) * scale
        out.append(torch.softmax(logits, dim=-1)[:, :text])
    return torch.stack(out)
