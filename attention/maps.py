"""Attention maps computed explicitly.

No fused attention kernel (SDPA, xformers, flash) returns its probabilities, so a policy that
reads or replaces maps computes ``softmax(q k^T / sqrt(d))`` itself, only for the rows it
edits, and only inside the current attention call.
"""
from __future__ import annotations

import torch


def attention_probs(q: torch.Tensor, k: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, N, heads*d]`` queries and ``[B, M, heads*d]`` keys to ``[B, heads, N, M]`` maps."""
    b, n, hd = q.shape
    d = hd // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, d).transpose(1, 2)
    return torch.softmax((q @ k.transpose(-1, -2)) * d ** -0.5, dim=-1)


def attend(probs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Apply ``[B, heads, N, M]`` maps to ``[B, M, heads*d]`` values: ``[B, N, heads*d]``."""
    b, heads, n, m = probs.shape
    d = v.shape[-1] // heads
    out = probs @ v.reshape(b, m, heads, d).transpose(1, 2)
    return out.transpose(1, 2).reshape(b, n, heads * d)
