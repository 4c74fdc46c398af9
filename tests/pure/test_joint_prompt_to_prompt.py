"""Prompt-to-Prompt on joint attention (``invertedit/techniques/joint_prompt_to_prompt/policy.py``): the
policy's output (the text maps from the call's log-sum-exp, the source's image block as an extra
row) against the edit written out on explicit joint maps, for every controller, with and without self-attention injection, with an unconditional chunk,
and the local blend's word maps against the explicit sums."""
import pytest
import torch
import torch.nn.functional as F

from invertedit.attention.align import refine_mapper
from invertedit.attention.controllers import AttentionRefine, AttentionReplace, AttentionReweight
from invertedit.techniques.joint_prompt_to_prompt.policy import JointPromptToPrompt
from invertedit.attention.local_blend import LocalBlend
from invertedit.attention.policy import JointWhere, PolicyInputError
from invertedit.attention.prompt_to_prompt import ReplaceSchedule, equalizer

TEXT, GRID, HEADS, DIM = 6, (2, 3), 2, 4
STEPS = 10
SCHEDULE = [1.0 - i / STEPS for i in range(STEPS + 1)]


def sdpa(q, k, v, mask=None):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def where(step: int, chunks=(0,), block=("double_block", 0)) -> JointWhere:
    return JointWhere(block=block, chunks=chunks, rows=2, heads=HEADS, text=TEXT, grid=GRID, attend=sdpa,
                      time=lambda: (SCHEDULE[step], SCHEDULE))


def probs(q, k):
    return torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, -1)


def written_out(q, k, v, a, b, self_: bool, chunks) -> torch.Tensor:
    """The edit on explicit maps: in each conditional pair the target's image rows' text block is
    ``P_s A + P_t B``, its image block the source's (self) or its own; everything else plain."""
    p = probs(q, k)
    for c, kind in enumerate(chunks):
        if kind != 0:
            continue
        s, t = 2 * c, 2 * c + 1
        row = p[t].clone()
        text = p[s, :, TEXT:, :TEXT] @ (a if a is not None else torch.zeros(TEXT, TEXT, dtype=p.dtype))
        text = text + p[t, :, TEXT:, :TEXT] @ (b if b is not None else torch.zeros(TEXT, TEXT, dtype=p.dtype))
        row[:, TEXT:, :TEXT] = text
        row[:, TEXT:, TEXT:] = p[s, :, TEXT:, TEXT:] if self_ else p[t, :, TEXT:, TEXT:]
        p[t] = row
    out = p @ v
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def tensors(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = TEXT + GRID[0] * GRID[1]
    return tuple(torch.randn(batch, HEADS, n, DIM, generator=g, dtype=torch.float64) for _ in range(3))


def controllers(blend=None):
    schedule = ReplaceSchedule(cross=0.5, self_=0.3, length=TEXT)
    swap = torch.eye(TEXT)
    swap[2, 2], swap[2, 3], swap[3, 3] = 0.5, 0.5, 0.0   # a one-token word becoming a two-token one, spread evenly
    mapper, alphas = refine_mapper([10, 11, 12, 13], [10, 11, 14, 12, 13], TEXT)
    words_schedule = ReplaceSchedule(cross=0.5, self_=0.3, length=TEXT, words=((2, 0.2),))
    return {
        "replace": AttentionReplace(schedule, blend=blend),
        "replace-swap": AttentionReplace(schedule, swap, blend=blend),
        "refine": AttentionRefine(schedule, mapper, alphas, blend=blend),
        "reweight": AttentionReweight(AttentionRefine(schedule, mapper, alphas, blend=blend),
                                      equalizer(TEXT, {2: 3.0, 4: 0.5})),
        "per-word": AttentionReplace(words_schedule, swap, blend=blend),
    }


@pytest.mark.parametrize("name", list(controllers()))
@pytest.mark.parametrize("step", [0, 3, 4, 8])   # self and cross; cross only; word fraction ended; nothing
@pytest.mark.parametrize("chunks", [(0,), (0, 1), (1, 0), (0, 0, 1, 0)])   # the last: rows by an index
def test_the_fused_edit_is_the_edit_written_out(name, step, chunks):
    controller = controllers()[name]
    policy = JointPromptToPrompt(controller)
    q, k, v = tensors(2 * len(chunks), seed=step)
    out = policy.attention(q, k, v, where(step, chunks), None)
    schedule = controller.schedule
    cross = schedule.injects("cross", step, STEPS, 0, 1)
    self_ = schedule.injects("self", step, STEPS, 0, 1)
    if cross:
        pattern = schedule.word_pattern(step, STEPS)
        a, b = controller.mixes(None if pattern is None else torch.tensor(pattern), torch.device("cpu"))
        a, b = (None if m is None else m.double() for m in (a, b))
    else:
        a, b = None, torch.eye(TEXT, dtype=torch.float64)
    expected = written_out(q, k, v, a, b, self_, chunks)
    assert torch.allclose(out, expected, atol=1e-10)
    if not cross and not self_:
        assert torch.allclose(out, sdpa(q, k, v), atol=1e-12)


def test_the_text_stream_keeps_its_own_attention():
    q, k, v = tensors(2)
    out = JointPromptToPrompt(controllers()["replace-swap"]).attention(q, k, v, where(0), None)
    plain = sdpa(q, k, v)
    assert torch.allclose(out[:, :TEXT], plain[:, :TEXT], atol=1e-12)   # every row's text queries
    assert torch.allclose(out[0], plain[0], atol=1e-12)                 # the source row
    assert not torch.allclose(out[1, TEXT:], plain[1, TEXT:], atol=1e-3)


@pytest.mark.parametrize("subtract", [False, True])
@pytest.mark.parametrize("step", [0, 4, 8])
def test_the_blend_reads_the_words_maps_written_out(step, subtract):
    """The source's blend words in the source's maps, the target's in the target's maps as edited; with subtract
    words (the reference's ``substruct_words``) their two maps after, read the same way from the same call."""
    blend = LocalBlend((1,), (2, 3), blocks=frozenset({("double_block", 0)}),
                       **(dict(subtract_source=(0, 2), subtract_target=(4,)) if subtract else {}))
    controller = controllers(blend)["refine"]
    policy = JointPromptToPrompt(controller)
    state = policy.make_state()
    q, k, v = tensors(4, seed=5)
    out = policy.attention(q, k, v, where(step, (0, 1)), state)
    cross = controller.schedule.injects("cross", step, STEPS, 0, 1)
    self_ = controller.schedule.injects("self", step, STEPS, 0, 1)
    a, b = controller.mixes(None, torch.device("cpu")) if cross else (None, torch.eye(TEXT, dtype=torch.float64))
    a, b = (None if m is None else m.double() for m in (a, b))
    assert torch.allclose(out, written_out(q, k, v, a, b, self_, (0, 1)), atol=1e-10)   # the edit is unchanged
    p = probs(q, k)[:, :, TEXT:, :TEXT]
    target_text = (p[0] @ a if a is not None else 0) + (p[1] @ b if b is not None else 0)
    source_words = p[0][..., [1]].sum(-1).sum(0)
    target_words = target_text[..., [2, 3]].sum(-1).sum(0)
    expected = [source_words, target_words]
    if subtract:
        expected += [p[0][..., [0, 2]].sum(-1).sum(0), target_text[..., [4]].sum(-1).sum(0)]
    assert torch.allclose(state.summed().double(), torch.stack(expected).reshape(len(expected), 1, *GRID), atol=1e-6)


def test_the_blend_outside_its_blocks_reads_nothing():
    blend = LocalBlend((1,), (2,), blocks=frozenset({("single_block", 0)}))
    policy = JointPromptToPrompt(controllers(blend)["replace"])
    state = policy.make_state()
    q, k, v = tensors(2)
    policy.attention(q, k, v, where(8), state)
    assert state.summed() is None


def test_half_precision_follows_float32():
    q, k, v = (t.float() for t in tensors(2, seed=3))
    policy = JointPromptToPrompt(controllers()["reweight"])
    exact = policy.attention(q, k, v, where(0), None)
    half = JointPromptToPrompt(controllers()["reweight"]).attention(q.half(), k.half(), v.half(), where(0), None)
    assert half.dtype == torch.float16
    assert (half.float() - exact).abs().max() < 2e-2 * exact.abs().max()


def test_a_batch_that_is_not_a_pair_is_refused():
    q, k, v = tensors(3)
    bad = JointWhere(block=("double_block", 0), chunks=(0,), rows=3, heads=HEADS, text=TEXT, grid=GRID, attend=sdpa,
                     time=lambda: (SCHEDULE[0], SCHEDULE))
    with pytest.raises(PolicyInputError, match="batch of 3"):
        JointPromptToPrompt(controllers()["replace"]).attention(q, k, v, bad, None)


def test_another_text_length_is_refused():
    q, k, v = tensors(2)
    policy = JointPromptToPrompt(AttentionReplace(ReplaceSchedule(length=TEXT + 1)))
    with pytest.raises(PolicyInputError, match="text tokens"):
        policy.attention(q, k, v, where(0), None)


def test_the_host_fallback_gives_the_same_edit():
    """Where the host's attention is not plain (another node's override), ``attend_lse`` is the host's
    output with the log-sum-exp written out: the same edit."""
    from invertedit.attention.attention_lse import log_sum_exp

    q, k, v = tensors(4, seed=7)
    blend = LocalBlend((1,), (2, 3), blocks=frozenset({("double_block", 0)}))
    for step in (0, 4):
        got = {}
        for name, lse in (("pure", None), ("host", lambda q, k, v: (sdpa(q, k, v), log_sum_exp(q, k)))):
            policy = JointPromptToPrompt(controllers(blend)["refine"])
            state = policy.make_state()
            w = JointWhere(block=("double_block", 0), chunks=(0, 1), rows=2, heads=HEADS, text=TEXT, grid=GRID,
                           attend=sdpa, time=lambda: (SCHEDULE[step], SCHEDULE), attend_lse=lse)
            got[name] = (policy.attention(q, k, v, w, state), state.summed())
        assert torch.allclose(got["pure"][0], got["host"][0], atol=1e-12)
        assert torch.allclose(got["pure"][1], got["host"][1], atol=1e-6)


def test_what_a_block_call_dispatches_beyond_the_stock_call():
    """The operations a call dispatches beyond the host's plain attention (3: the kernel, a transpose and a
    reshape), where the host's attention is plain: replace on aligned prompts edits the text maps with 10 more
    (the keys' and values' text slices, the target rows' values, the call over the text keys, the weight's
    three, its product with ``weigh``, the part's product in place, one ``index_add_``); with the source's image
    block injected (no text-map edit), 4 (three selects and a gather); the blend's reading of an edited call 3
    more (the call over the text keys, a slice, one ``addcmul_``). Issue 27's per-step cost at Flux.1's depth
    rests on these counts (docs/measurements.md, "The edit added in the kernel's layout")."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    def count(fn) -> int:
        Count.n = 0
        with torch.no_grad(), Count():
            fn()
        return Count.n

    q, k, v = (t.float() for t in tensors(2, seed=3))
    stock = count(lambda: sdpa(q, k, v))
    blend = LocalBlend((1,), (1,), blocks=frozenset({("double_block", 0)}))
    for with_blend, expected in ((None, {"cross": 10, "self": 4}), (blend, {"cross": 13})):
        schedule = ReplaceSchedule(cross=0.8, self_=0.4, length=TEXT)
        policy = JointPromptToPrompt(AttentionReplace(schedule, blend=with_blend))
        state = policy.make_state()
        for kind, step in (("cross", 6), ("self", 1)):
            if kind not in expected:
                continue
            policy.attention(q, k, v, where(step), state)   # the plan, made once per layout
            extra = count(lambda: policy.attention(q, k, v, where(step), state)) - stock
            assert extra <= expected[kind], (kind, with_blend is not None, extra)
