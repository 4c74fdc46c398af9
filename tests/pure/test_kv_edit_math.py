"""KV-Edit's pure pieces (``invertedit/techniques/kv_edit/policies.py``): the mask's tokens as the authors'
code finds them, the attention masks, and the edit's keys and values when the target prompt's
text is longer than the source's (the slower path) against the same attention written out."""
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from invertedit.techniques.kv_edit.policies import (KVEdit, EditState, KeepKeysValues, background_bias, edited_tokens,
                                          inversion_bias, latent_mask)
from invertedit.attention.policy import JointWhere, PolicyInputError


def their_tokens(mask: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The edited tokens as their ``Flux_kv_edit.denoise`` finds them (16 latent channels, 2x2 patches)."""
    mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False)
    mask[mask > 0] = 1
    mask = repeat(mask, "b c h w -> b (repeat c) h w", repeat=16)
    mask = rearrange(mask, "b c (h ph) (w pw) -> b (h w) (c ph pw)", ph=2, pw=2)
    return (mask.sum(dim=2) > 0.5)[0]


@pytest.mark.parametrize("seed", range(4))
def test_the_edited_tokens_are_the_authors(seed):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(1, 1, 96, 128, generator=g) > 0.97).float()   # scattered pixels: cells and patches partly set
    cells = latent_mask(mask[:, 0], (12, 16))
    assert torch.equal(edited_tokens(cells, 2), their_tokens(mask.clone(), 12, 16))


def test_inversion_bias_keeps_the_region_and_the_background_apart():
    edited = torch.tensor([True, False, False, True])
    bias = inversion_bias(2, edited, torch.float32)[0, 0]
    allowed = bias == 0
    assert allowed[:2].all() and allowed[:, :2].all()                 # text rows and columns: everything
    assert allowed[2, 5] and allowed[5, 2] and not allowed[2, 3] and not allowed[3, 5] and allowed[3, 4]
    assert torch.isinf(bias[~allowed]).all()


def test_background_bias_raises_only_the_backgrounds_keys():
    bias = background_bias(3, torch.tensor([True, False, True, False]), 1.5, torch.float32)
    assert bias.shape == (1, 1, 1, 7) and bias[0, 0, 0].tolist() == [0, 0, 0, 0, 1.5, 0, 1.5]


def sdpa(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def where(text: int, grid=(2, 3)) -> JointWhere:
    return JointWhere(block=("double_block", 0), chunks=(0,), rows=1, heads=2, text=text, grid=grid, attend=sdpa,
                      time=lambda: (0.5, [1.0, 0.5, 0.0]))


def test_a_longer_target_prompt_takes_the_kept_image_keys_and_values():
    g = torch.Generator().manual_seed(0)
    edited = torch.tensor([True, False, False, True, False, True])
    kept_k, kept_v = (torch.randn(1, 2, 4 + 6, 8, generator=g) for _ in range(2))   # source: 4 text tokens
    q, k, v = (torch.randn(1, 2, 7 + 6, 8, generator=g) for _ in range(3))           # target: 7
    policy, state = KVEdit({(1, "double_block", 0): (kept_k, kept_v)}, edited, 1.0), EditState(step=1)
    out = policy.attention(q, k, v, where(7), state)
    image = torch.where(edited[None, None, :, None], k[:, :, 7:], kept_k[:, :, 4:])
    values = torch.where(edited[None, None, :, None], v[:, :, 7:], kept_v[:, :, 4:])
    want = sdpa(q, torch.cat((k[:, :, :7], image), 2), torch.cat((v[:, :, :7], values), 2),
                background_bias(7, edited, 1.0, torch.float32))
    made = torch.cat((torch.ones(7, dtype=torch.bool), edited))   # the text's and the edited tokens' rows
    assert torch.allclose(out[:, made], want[:, made], atol=1e-6)
    assert not out[:, ~made].any()   # the background's rows are not computed (as the authors', who run no such rows)
    # the same length: one select per tensor, the same attention
    same = KVEdit({(1, "double_block", 0): (torch.cat((k[:, :, :7], kept_k[:, :, 4:]), 2),
                                            torch.cat((v[:, :, :7], kept_v[:, :, 4:]), 2))}, edited, 1.0)
    assert torch.equal(same.attention(q, k, v, where(7), EditState(step=1)), out)


@pytest.mark.parametrize("kept_text", [4, 7, 9], ids=["shorter-source", "same", "longer-source"])
@pytest.mark.parametrize("scale", [1.0, 0.0])
def test_a_call_on_the_text_and_the_region_alone_is_the_whole_calls_rows(kept_text, scale):
    """The host kit runs each block on the text and the edited tokens alone (the authors' code); their
    call, with the kept keys and values appended whole, gives the rows of the call on every token."""
    g = torch.Generator().manual_seed(1)
    edited = torch.tensor([True, False, False, True, False, True])
    kept_k, kept_v = (torch.randn(1, 2, kept_text + 6, 8, generator=g) for _ in range(2))
    q, k, v = (torch.randn(1, 2, 7 + 6, 8, generator=g) for _ in range(3))
    cache = {(1, "double_block", 0): (kept_k, kept_v)}
    whole = KVEdit(cache, edited, scale).attention(q, k, v, where(7), EditState(step=1))
    made = torch.cat((torch.ones(7, dtype=torch.bool), edited))
    policy = KVEdit(cache, edited, scale)
    part = policy.attention(q[:, :, made], k[:, :, made], v[:, :, made], where(7), EditState(step=1))
    assert part.shape == (1, 7 + 3, 2 * 8)
    assert torch.allclose(part, whole[:, made], atol=1e-6)


def test_keeping_more_than_the_device_holds_is_refused_before_it_runs_out():
    k = torch.zeros(1, 2, 3 + 6, 8)
    policy = KeepKeysValues({}, torch.Tensor.clone, blocks=57, steps=28, budget=1000)
    with pytest.raises(PolicyInputError, match=r"keeping KV-Edit's keys and values needs .* GiB \(28 steps x 57 "
                                               r"blocks x 9 tokens\) .*set keep_values_on to cpu"):
        policy.attention(k, k, k, where(3), policy.make_state())


def test_kept_tensors_are_handed_over_in_the_runs_order():
    """``prefetch.AheadOfUse``: the next key after each is the next block of the same step, then the next step's
    first (the order the edit asks in; the inversion kept them from the last step down); on the CPU each is handed
    over in the asker's dtype, the cache's own tensor where nothing changes, and nothing is queued."""
    from invertedit.techniques.kv_edit.prefetch import AheadOfUse

    blocks = [("double_block", 0), ("double_block", 1), ("single_block", 0)]
    cache = {"mask": torch.ones(4, dtype=torch.bool)}
    for step in (2, 1, 0):   # inversion order
        for block in blocks:
            cache[(step, *block)] = (torch.full((1, 2, 3, 4), float(step)), torch.zeros(1, 2, 3, 4))
    ahead = AheadOfUse(cache)
    order = [(s, *b) for s in range(3) for b in blocks]
    assert ahead.after == dict(zip(order, order[1:]))
    like = torch.zeros(1, dtype=torch.float64)
    ks, vs = ahead.get((1, "single_block", 0), like)
    assert ks.dtype == torch.float64 and torch.equal(ks, torch.full((1, 2, 3, 4), 1.0, dtype=torch.float64))
    assert ahead.get((1, "single_block", 0), torch.zeros(1))[0] is cache[(1, "single_block", 0)][0]
    assert ahead.get((5, "double_block", 0), like) is None
    assert ahead.pending == {} and ahead.stream is None


def test_keeping_more_than_the_system_holds_names_the_setting_that_fits():
    """Kept in the system's memory (the authors' offload, or no GPU: issue 79's 73 GB for the shipped 1 MP run), a
    cache that does not fit is refused before the run, naming that memory and the setting that halves it."""
    k = torch.zeros(1, 2, 3 + 6, 8)
    policy = KeepKeysValues({}, torch.Tensor.clone, blocks=57, steps=28, budget=1000,
                            budget_where="the system's memory",
                            budget_fix="keep them in 8 bits (keep_values_on 'cpu, fp8': half the memory)")
    with pytest.raises(PolicyInputError, match=r"needs .* GiB \(28 steps x 57 blocks x 9 tokens\) and the system's "
                                               r"memory has 0.0 GiB free; keep them in 8 bits \(keep_values_on 'cpu, "
                                               r"fp8': half the memory\), or invert fewer steps or a smaller image"):
        policy.attention(k, k, k, where(3), policy.make_state())


def test_inversion_bias_takes_the_references_tokens_as_the_text():
    """An instruction editor's reference tokens (after the image's) attend to every token and every token to them,
    as the text's, under the attn_mask option."""
    edited = torch.tensor([True, False, False, True])
    bias = inversion_bias(2, edited, torch.float32, references=3)[0, 0]
    allowed = bias == 0
    assert bias.shape == (2 + 4 + 3, 2 + 4 + 3)
    assert allowed[6:].all() and allowed[:, 6:].all()
    assert torch.equal(allowed[:6, :6], inversion_bias(2, edited, torch.float32)[0, 0] == 0)


@pytest.mark.parametrize("cached", [False, True], ids=["computed", "cached"])
@pytest.mark.parametrize("kept_text", [4, 7], ids=["shorter-source", "same"])
def test_with_reference_tokens_a_call_on_the_subset_is_the_whole_calls_rows(kept_text, cached):
    """With 3 reference tokens after the image's: the reference computed (its rows among the subset's, the kept ones
    not read: the inversion kept none) or cached (its kept keys and values read, its rows not computed); the call on
    the subset gives the rows of the call on every token."""
    g = torch.Generator().manual_seed(2)
    edited, refs = torch.tensor([True, False, False, True, False, True]), 3
    kept_k, kept_v = (torch.randn(1, 2, kept_text + 6 + (refs if cached else 0), 8, generator=g) for _ in range(2))
    q, k, v = (torch.randn(1, 2, 7 + 6 + refs, 8, generator=g) for _ in range(3))
    cache = {(1, "double_block", 0): (kept_k, kept_v)}
    at = JointWhere(block=("double_block", 0), chunks=(0,), rows=1, heads=2, text=7, grid=(2, 3), attend=sdpa,
                    time=lambda: (0.5, [1.0, 0.5, 0.0]), references=refs)
    whole = KVEdit(cache, edited, 1.0, refs, cached).attention(q, k, v, at, EditState(step=1))
    made = torch.cat((torch.ones(7, dtype=torch.bool), edited, torch.full((refs,), not cached)))
    part = KVEdit(cache, edited, 1.0, refs, cached).attention(q[:, :, made], k[:, :, made], v[:, :, made], at,
                                                              EditState(step=1))
    assert torch.allclose(part, whole[:, made], atol=1e-6)
    assert not whole[:, ~made].any()
    # what the rows attend to, written out: their own text, region (and reference), the kept background (and reference)
    own = torch.cat((torch.ones(7, dtype=torch.bool), edited, torch.full((refs,), not cached)))
    keys = torch.cat((k[:, :, own], kept_k[:, :, kept_text:kept_text + 6][:, :, ~edited]) +
                     ((kept_k[:, :, kept_text + 6:],) if cached else ()), 2)
    values = torch.cat((v[:, :, own], kept_v[:, :, kept_text:kept_text + 6][:, :, ~edited]) +
                       ((kept_v[:, :, kept_text + 6:],) if cached else ()), 2)
    bias = torch.cat((torch.zeros(int(own.sum())), torch.ones(int((~edited).sum())), torch.zeros(refs if cached else 0)))
    want = sdpa(q[:, :, made], keys, values, bias[None, None, None])
    assert torch.allclose(part, want, atol=1e-6)
