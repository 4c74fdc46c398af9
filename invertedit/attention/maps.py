"""Attention maps computed explicitly.

No fused attention kernel (SDPA, xformers, flash) returns its probabilities, so a policy that
reads or replaces maps computes ``softmax(q k^T / sqrt(d))`` itself, only for the rows it
edits, and only inside the current attention call.
"""
from __future__ import annotations

import torch


def attention_probs(q: torch.Tensor, k: torch.Tensor, heads: int, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[B, N, heads*d]`` queries and ``[B, M, heads*d]`` keys to ``[B, heads, N, M]`` maps;
    with ``key_mask`` (``[M]`` bool, some True) only those keys are attended to."""
    b, n, hd = q.shape
    d = hd // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, d).transpose(1, 2)
    logits = (q @ k.transpose(-1, -2)) * d ** -0.5
    if key_mask is not None:
        logits = logits.masked_fill(~key_mask.to(logits.device), float("-inf"))
    return torch.softmax(logits, dim=-1)


def attend(probs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply ``[B, heads, N, M]`` maps to ``[B, M, heads*d]`` values: ``[B, N, heads*d]``."""
    b, heads, n, m = probs.shape
    d = v.shape[-1] // heads
    out = probs @ v.reshape(b, m, heads, d).transpose(1, 2)
    return out.transpose(1, 2).reshape(b, n, heads * d)


def token_grid(latent_hw: tuple[int, int], tokens: int) -> tuple[int, int]:
    """The (h, w) grid of an attention layer with ``tokens`` image tokens in a UNet whose input
    latent is ``latent_hw`` (each level halves the sides)."""
    h0, w0 = latent_hw
    scale = (h0 * w0 / tokens) ** 0.5
    return round(h0 / scale), round(w0 / scale)
