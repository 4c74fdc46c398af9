"""``invertedit/attention/attention_lse.py``: the fused kernel's output and log-sum-exp against both
written out, in every CPU dtype, and the written-out log-sum-exp with an additive mask."""
import pytest
import torch
import torch.nn.functional as F

from invertedit.attention.attention_lse import attention_with_lse, log_sum_exp


def explicit(q, k, v, mask=None):
    logits = (q.double() @ k.double().transpose(-1, -2)) * q.shape[-1] ** -0.5
    if mask is not None:
        logits = logits + mask.double()
    out = torch.softmax(logits, -1) @ v.double()
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1), torch.logsumexp(logits, -1)


# the log-sum-exp's bound: float64 exact; float32 to its rounding; bfloat16 inputs to the bound the pack
# accepts a kernel's log-sum-exp by (``attention_lse._fused``: 1e-3), as the CPU flash kernel's bfloat16 path
# rounds differently from one CPU to another (5e-5 off on this project's 2-core machine, 2026-11-29)
LSE_TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 1e-3}


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_output_and_log_sum_exp_are_the_written_out_ones(dtype, tol):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 37, 16, generator=g).to(dtype) for _ in range(3))
    out, lse = attention_with_lse(q, k, v)
    ref_out, ref_lse = explicit(q, k, v)
    assert out.shape == (2, 37, 48) and out.dtype == dtype
    assert lse.shape == (2, 3, 37) and lse.dtype == torch.promote_types(dtype, torch.float32)
    assert torch.allclose(out.double(), ref_out, atol=tol)
    assert torch.allclose(lse.double(), ref_lse, atol=LSE_TOL[dtype])
    plain = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 37, 48)
    assert torch.equal(out, plain)   # the kernel scaled_dot_product_attention picks: the same numbers
    fewer = attention_with_lse(q, k[:, :, :9], v[:, :, :9])   # fewer keys than queries (the text keys)
    ref_out, ref_lse = explicit(q, k[:, :, :9], v[:, :, :9])
    assert torch.allclose(fewer[0].double(), ref_out, atol=tol) and fewer[1].shape == (2, 3, 37)
    assert torch.allclose(fewer[1].double(), ref_lse, atol=LSE_TOL[dtype])


def test_the_written_out_log_sum_exp_takes_a_mask_and_chunks(monkeypatch):
    import invertedit.attention.attention_lse as module

    monkeypatch.setattr(module, "_CHUNK", 5)   # several chunks of queries
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(1, 2, 12, 8, generator=g, dtype=torch.float64) for _ in range(2))
    mask = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    mask[..., 3:] = float("-inf")
    mask[..., 0, :] = 0.0
    assert torch.allclose(log_sum_exp(q, k, mask), explicit(q, k, q, mask)[1], atol=1e-12)
    assert torch.allclose(log_sum_exp(q, k), explicit(q, k, q)[1], atol=1e-12)


def test_each_kernels_log_sum_exp_comes_out_as_batch_heads_queries():
    """The CUDA kernels' layouts (cuDNN ``[b, h, t, 1]``; memory-efficient padded to 32 queries; flash
    ``[b, h, t]``) to ``[b, h, t]``; flash's is handed on as it is, with no operation dispatched."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from invertedit.attention.attention_lse import kernel_lse

    lse = torch.randn(2, 3, 37)
    assert torch.equal(kernel_lse(lse[..., None].clone(), 2, 3, 37), lse)
    padded = torch.cat([lse, torch.full((2, 3, 27), float("inf"))], -1)
    assert torch.equal(kernel_lse(padded, 2, 3, 37), lse)

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.ops += 1
            return func(*args, **(kwargs or {}))

    with Count():
        assert kernel_lse(lse, 2, 3, 37) is lse
    assert Count.ops == 0
