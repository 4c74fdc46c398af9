"""Attention that also returns each query's log-sum-exp, the logarithm of its softmax's normaliser.

Prompt-to-Prompt on joint attention (``joint_prompt_to_prompt.py``) needs the image queries'
probabilities on the few text keys (Flux.1: 256 of 4,352 tokens at 1 MP) under the softmax over
every key. With the call's log-sum-exp they are ``exp(q k_text^T / sqrt(d) - lse)``: a product over
the text keys only, instead of a second full attention. PyTorch's fused attention kernels compute
the log-sum-exp anyway; its private ops return it (the public ``scaled_dot_product_attention``
does not). The kernel is the one ``scaled_dot_product_attention`` would pick for the inputs
(``torch._fused_sdp_choice``: cuDNN, flash or memory-efficient on CUDA; flash on the CPU), so the
output is what the host's default PyTorch attention gives. Each CUDA kernel's log-sum-exp is
checked once per process, kernel and dtype against the one written out on a few queries; where
a kernel is not available, or its log-sum-exp disagrees, the output comes from
``scaled_dot_product_attention`` and the log-sum-exp is written out in chunks of queries (correct,
slower; a warning says so).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

_FLASH, _EFFICIENT, _CUDNN = 1, 2, 3   # torch.nn.attention.SDPBackend's values, as _fused_sdp_choice returns them
_CHECKED: dict = {}                    # (kernel, dtype) -> whether its log-sum-exp agreed
_CHUNK = 1024                          # queries a chunk when the log-sum-exp is written out


def attention_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of ``[batch, heads, tokens, dim]`` inputs at scale ``dim ** -0.5``, no mask:
    the output ``[batch, tokens, heads * dim]`` (the host's layout) and the log-sum-exp ``[batch,
    heads, tokens]`` (float32, float64 for float64 inputs)."""
    out, lse = heads_attention_with_lse(q, k, v)
    return host_layout(out), lse


def host_layout(out: torch.Tensor) -> torch.Tensor:
    """An attention output ``[batch, heads, tokens, dim]`` (as the kernels give it) in the host's layout,
    ``[batch, tokens, heads * dim]``: a transpose and a reshape, what the host's own call makes."""
    b, h, t, d = out.shape
    return out.transpose(1, 2).reshape(b, t, h * d)


def heads_attention_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``attention_with_lse`` with the output as the kernel gives it, ``[batch, heads, queries, dim]``;
    the keys may be fewer than the queries (the values' ``dim`` is the queries'). ``mask``: an additive
    bias broadcast over ``[batch, heads, queries, keys]`` in the queries' dtype (a padded prompt's keys
    at -inf): the CPU's fused kernel takes it; on CUDA the output is ``scaled_dot_product_attention``'s
    and the log-sum-exp written out (the kernels that take a bias want it aligned, which a padded
    prompt's length is not)."""
    out, lse = _fused(q, k, v, mask)
    if lse is None:
        out, lse = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), log_sum_exp(q, k, mask)
    return out, lse


def log_sum_exp(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``logsumexp(q k^T / sqrt(dim) + mask)`` over the keys (``mask``: an additive bias broadcast over
    ``[batch, heads, queries, keys]``), written out a chunk of queries at a time (at least float32)."""
    acc = torch.promote_types(q.dtype, torch.float32)
    keys = k.to(acc).transpose(-1, -2)
    scale = q.shape[-1] ** -0.5
    chunks = []
    for i in range(0, q.shape[2], _CHUNK):
        logits = torch.matmul(q[:, :, i:i + _CHUNK].to(acc), keys) * scale
        if mask is not None:
            logits = logits + (mask[..., i:i + _CHUNK, :] if mask.shape[-2] > 1 else mask).to(acc)
        chunks.append(torch.logsumexp(logits, -1))
    return torch.cat(chunks, dim=2)


def kernel_lse(lse: torch.Tensor, b: int, h: int, t: int) -> torch.Tensor:
    """A fused kernel's log-sum-exp as ``[b, h, t]``: cuDNN's ``[b, h, t, 1]`` reshaped, the memory-efficient
    kernel's padded queries (to a multiple of 32) dropped, flash's as it is (no operation dispatched)."""
    if lse.dim() != 3:
        lse = lse.reshape(b, h, -1)
    if lse.shape[-1] != t:
        lse = lse[..., :t]
    return lse


def _fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
           mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if q.device.type == "cpu":
        if mask is None:
            return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False)[:2]
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=mask)[:2]
    if q.device.type != "cuda" or mask is not None:
        return q, None
    kernel = torch._fused_sdp_choice(q, k, v)
    key = (kernel, q.dtype)
    if not _CHECKED.get(key, True):
        return q, None
    b, h, t, _ = q.shape
    try:
        if kernel == _FLASH:
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v)[:2]
        elif kernel == _CUDNN:
            out, lse = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True)[:2]
        elif kernel == _EFFICIENT:
            out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True)[:2]
        else:
            return q, None
        lse = kernel_lse(lse, b, h, t)
    except (RuntimeError, TypeError, AttributeError, NotImplementedError) as e:
        _CHECKED[key] = False
        warnings.warn(f"attention_with_lse: PyTorch's attention kernel {kernel} ({q.dtype}) did not return its "
                      f"log-sum-exp ({type(e).__name__}: {e}); writing it out instead (slower)")
        return q, None
    if key not in _CHECKED:   # once per process, kernel and dtype: a few queries written out
        probe = log_sum_exp(q[:1, :1, :16], k[:1, :1])
        _CHECKED[key] = bool(torch.allclose(lse[:1, :1, :16].to(probe.dtype), probe, rtol=1e-3, atol=1e-3))  # sampling-path-ok: once per process, kernel and dtype
        if not _CHECKED[key]:
            warnings.warn(f"attention_with_lse: PyTorch's attention kernel {kernel} ({q.dtype}) returned a "
                          f"log-sum-exp that disagrees with the written-out one; writing it out instead (slower)")
            return q, None
    return out, lse
