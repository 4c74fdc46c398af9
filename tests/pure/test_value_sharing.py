"""RF-Solver-Edit's value sharing (``invertedit/techniques/rf_solver_edit/value_sharing.py``) on a joint-attention
call written out: Flux's single blocks keep and share the whole call's values (text and image, as the authors'
code); Qwen-Image's joint blocks (``image_only``) the image tokens' alone, the target's text keeping its own, so a
target prompt of another token count than the source's shares the image's values all the same."""
import pytest
import torch
import torch.nn.functional as F

from invertedit.attention.policy import JointWhere, PolicyInputError
from invertedit.techniques.rf_solver_edit.value_sharing import KeepValues, ShareValues

SCHEDULE = [1.0, 0.5, 0.0]


def sdpa(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).flatten(2)


def where(text: int, sigma: float, grid=(2, 3), block: int = 4) -> JointWhere:
    return JointWhere(block=("double_block", block), chunks=(0,), rows=1, heads=2, text=text, grid=grid, attend=sdpa,
                      time=lambda: (sigma, SCHEDULE))


def qkv(text: int, seed: int, rows: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(rows, 2, text + 6, 8, generator=g) for _ in range(3))


@pytest.mark.parametrize("image_only", [False, True])
def test_kept_values_are_the_calls_and_attending_is_unchanged_while_inverting(image_only):
    q, k, v = qkv(4, seed=0)
    sink: dict = {}
    out = KeepValues(1, sink, torch.Tensor.clone, image_only=image_only).attention(q, k, v, where(4, 0.5), None)
    assert torch.equal(out, sdpa(q, k, v))
    # the inversion's call at schedule point 1 (sigma 0.5) is step 0's, the first evaluation
    assert list(sink) == [(0, False, 4)]
    assert torch.equal(sink[(0, False, 4)], v[:, :, 4:] if image_only else v)


def test_qwen_images_sharing_takes_the_image_values_and_keeps_the_targets_text():
    """A target of 7 text tokens sharing values kept from a source of 4: the image tokens attend with the kept
    values, the text with the target's own; every row (a CFG batch) shares the same."""
    kept = qkv(4, seed=1)[2][:, :, 4:]
    q, k, v = qkv(7, seed=2, rows=2)
    policy = ShareValues({(0, False, 4): kept}, SCHEDULE, image_only=True)
    out = policy.attention(q, k, v, where(7, 1.0), policy.make_state())
    want = sdpa(q, k, torch.cat((v[:, :, :7], kept.expand(2, -1, -1, -1)), dim=2))
    assert torch.allclose(out, want, atol=1e-6)
    assert not torch.allclose(out, sdpa(q, k, v), atol=1e-3)
    # a step the inversion kept nothing for attends as it was
    later = policy.attention(q, k, v, where(7, 0.5), policy.make_state())
    assert torch.equal(later, sdpa(q, k, v))


def test_fluxs_sharing_takes_the_whole_calls_values():
    kept = qkv(4, seed=1)[2]
    q, k, v = qkv(4, seed=2)
    policy = ShareValues({(0, False, 4): kept}, SCHEDULE)
    out = policy.attention(q, k, v, where(4, 1.0), policy.make_state())
    assert torch.allclose(out, sdpa(q, k, kept), atol=1e-6)


def test_kept_values_of_another_image_size_are_refused():
    kept = torch.randn(1, 2, 8, 8)   # 8 image tokens, the run's 6
    q, k, v = qkv(7, seed=2)
    policy = ShareValues({(0, False, 4): kept}, SCHEDULE, image_only=True)
    with pytest.raises(PolicyInputError, match="the kept values are 8 image tokens, this run's 6"):
        policy.attention(q, k, v, where(7, 1.0), policy.make_state())
