"""GPU lane: the log-sum-exp attention (``invertedit/attention/attention_lse.py``) on the CUDA kernels
PyTorch picks (cuDNN, flash, memory-efficient; each one's private op and its log-sum-exp layout are
only exercised here), in the host's GPU dtypes, against both written out in float64; and
Prompt-to-Prompt on joint attention on CUDA, at a Flux-like layout (256 text tokens, heads of 128),
against the edit written out."""
from __future__ import annotations

import warnings

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda(cuda_only):
    if cuda_only != "cuda":
        pytest.skip("the CUDA kernels' test: INVERTEDIT_GPU_LANE_DEVICE=cpu runs no CUDA kernel")
    return torch.device("cuda")


def explicit(q, k, v):
    logits = (q.double() @ k.double().transpose(-1, -2)) * q.shape[-1] ** -0.5
    out = torch.softmax(logits, -1) @ v.double()
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1), torch.logsumexp(logits, -1)


def kernels(order: str):
    """The host's order of PyTorch's attention kernels (cuDNN first, as ``comfy.ops`` sets it around
    each call), or PyTorch's default."""
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel

    if order == "default":
        return nullcontext()
    return sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH], set_priority=True)


@pytest.mark.parametrize("order", ["host", "default"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("tokens,dim,keys", [(300, 128, 300), (1280, 64, 1280), (77 + 256, 64, 333),
                                             (1024, 128, 256)])   # the last: image queries over the text keys
def test_the_fused_kernels_log_sum_exp(cuda, dtype, tokens, dim, keys, order):
    from invertedit.attention import attention_lse

    g = torch.Generator(device=cuda).manual_seed(0)
    q = torch.randn(2, 4, tokens, dim, generator=g, device=cuda).to(dtype)
    k, v = (torch.randn(2, 4, keys, dim, generator=g, device=cuda).to(dtype) for _ in range(2))
    with kernels(order), warnings.catch_warnings():
        kernel = torch._fused_sdp_choice(q, k, v)
        warnings.simplefilter("error")   # a kernel that fell back to the written-out log-sum-exp fails here
        out, lse = attention_lse.attention_with_lse(q, k, v)
    print(order, dtype, tokens, dim, "kernel", kernel)
    ref_out, ref_lse = explicit(q, k, v)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    assert lse.shape == (2, 4, tokens), (kernel, lse.shape)
    assert (lse.double() - ref_lse).abs().max() < 1e-3, kernel
    assert (out.double() - ref_out).abs().max() < tol, kernel
    assert attention_lse._CHECKED.get((kernel, dtype)) in (True, None), kernel


@pytest.mark.parametrize("step", [0, 4, 8])
def test_joint_prompt_to_prompt_on_cuda(cuda, step):
    """The policy's edit and blend maps on CUDA in bfloat16 against the edit written out in float64
    (the pure tests' reference), at 256 text tokens and heads of 128."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "pure_joint_prompt_to_prompt", Path(__file__).resolve().parents[1] / "pure" / "test_joint_prompt_to_prompt.py")
    pure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pure)   # the pure tests' written-out edit
    from invertedit.attention.controllers import AttentionReplace
    from invertedit.techniques.joint_prompt_to_prompt.policy import JointPromptToPrompt
    from invertedit.attention.local_blend import LocalBlend
    from invertedit.attention.policy import JointWhere
    from invertedit.attention.prompt_to_prompt import ReplaceSchedule

    text, grid, heads, dim = 256, (16, 16), 4, 128
    g = torch.Generator(device=cuda).manual_seed(step)
    q, k, v = (torch.randn(2, heads, text + grid[0] * grid[1], dim, generator=g, device=cuda) for _ in range(3))
    q, k = q * 2.0, k * 2.0   # peaked maps, as a trained model's
    blend = LocalBlend((1,), (2,), blocks=frozenset({("double_block", 0)}))
    controller = AttentionReplace(ReplaceSchedule(cross=0.5, self_=0.3, length=text), blend=blend)
    policy = JointPromptToPrompt(controller)
    state = policy.make_state()

    def sdpa(q, k, v, mask=None):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)

    where = JointWhere(block=("double_block", 0), chunks=(0,), rows=2, heads=heads, text=text, grid=grid,
                       attend=sdpa, time=lambda: (pure.SCHEDULE[step], pure.SCHEDULE))
    qb, kb, vb = (t.bfloat16() for t in (q, k, v))
    with kernels("host"):
        out = policy.attention(qb, kb, vb, where, state)
    cross = controller.schedule.injects("cross", step, pure.STEPS, 0, 1)
    self_ = controller.schedule.injects("self", step, pure.STEPS, 0, 1)
    a, b = controller.mixes(None, cuda) if cross else (None, torch.eye(text, device=cuda))
    a, b = (None if m is None else m.double().cpu() for m in (a, b))
    qb, kb, vb, out = (t.double().cpu() for t in (qb, kb, vb, out))   # the reference on the CPU, in float64
    pure.TEXT = text   # this module's own copy
    expected = pure.written_out(qb, kb, vb, a, b, self_, (0,))
    assert (out - expected).abs().max() < 3e-2 * expected.abs().max()
    p = pure.probs(qb, kb)[:, :, text:, :text]
    target_text = (p[0] @ a if a is not None else 0) + (p[1] @ b if b is not None else 0)
    maps = torch.stack([p[0][..., [1]].sum(-1).sum(0), target_text[..., [2]].sum(-1).sum(0)]).reshape(2, 1, *grid)
    assert (state.summed().double().cpu() - maps).abs().max() < 1e-2 * maps.abs().max()
