import torch

from invertedit.attention.maps import attend, attention_probs
from invertedit.attention.prompt_to_prompt import ReplaceSchedule, replace_target


def qkv(b=2, n=16, m=7, heads=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n, heads * d, generator=g), torch.randn(b, m, heads * d, generator=g),
            torch.randn(b, m, heads * d, generator=g))


def test_explicit_maps_match_fused_attention():
    q, k, v = qkv()
    heads, d = 4, 8
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(t.reshape(2, -1, heads, d).transpose(1, 2) for t in (q, k, v))).transpose(1, 2).reshape(2, 16, heads * d)
    probs = attention_probs(q, k, heads)
    assert probs.shape == (2, 4, 16, 7) and torch.allclose(probs.sum(-1), torch.ones(2, 4, 16))
    assert torch.allclose(attend(probs, v), ref, atol=1e-6)


def test_replace_uses_source_maps_with_target_values():
    q, k, v = qkv()
    out = replace_target(q, k, v, 4)
    assert torch.allclose(out, attend(attention_probs(q[:1], k[:1], 4), v[1:2]))
    # identical rows: the replaced target equals plain attention
    same = replace_target(q[:1].repeat(2, 1, 1), k[:1].repeat(2, 1, 1), v[:1].repeat(2, 1, 1), 4)
    assert torch.allclose(same, attend(attention_probs(q[:1], k[:1], 4), v[:1]), atol=0)


def test_schedule_counts_steps_as_the_reference_code():
    s = ReplaceSchedule()   # cross 0.8, self 0.4
    # cross: the reference's alpha table has N + 1 rows: int(0.8 * 51) = 40 steps of 50
    assert [s.injects("cross", i, 50, 77, 4096) for i in (0, 39, 40)] == [True, True, False]
    assert [s.injects("self", i, 50, 256, 4096) for i in (0, 19, 20)] == [True, True, False]
    # where rounding up and the reference differ: 15 steps at 0.1 is 1 cross step; 8 steps at 0.6 is 4 self steps
    assert [ReplaceSchedule(cross=0.1).injects("cross", i, 15, 77, 4096) for i in (0, 1)] == [True, False]
    assert [ReplaceSchedule(self_=0.6).injects("self", i, 8, 256, 4096) for i in (3, 4)] == [True, False]


def test_self_attention_layers_follow_the_latent():
    s = ReplaceSchedule(self_=1.0)
    # SD1.5 at 512 px (64x64 latent): 32x32 and coarser, not the finest 64x64 layers
    assert [s.injects("self", 0, 50, n * n, 64 * 64) for n in (64, 32, 16, 8)] == [False, True, True, True]
    # SD1.5 at 768 px (96x96 latent): the same layers, 48x48 and coarser
    assert [s.injects("self", 0, 50, n * n, 96 * 96) for n in (96, 48, 24)] == [False, True, True]
    # SDXL at 1024 px (128x128 latent, attention at 64x64 and 32x32): both
    assert [s.injects("self", 0, 50, n * n, 128 * 128) for n in (64, 32)] == [True, True]
    # the generation notebook's rule: latent/4 and coarser
    notebook = ReplaceSchedule(self_=1.0, self_layers=1 / 16)
    assert [notebook.injects("self", 0, 50, n * n, 64 * 64) for n in (32, 16)] == [False, True]


def test_reweight_scales_exactly_the_chosen_tokens():
    from invertedit.attention.maps import attend, attention_probs
    from invertedit.attention.prompt_to_prompt import equalizer, refine_target, replace_target

    q, k, v = qkv(m=7)
    eq = equalizer(7, {3: 2.0, 5: -1.0})
    assert eq.tolist() == [1, 1, 1, 2, 1, -1, 1]
    probs = attention_probs(q[:1], k[:1], 4)
    scaled = probs.clone()
    scaled[..., 3] *= 2.0
    scaled[..., 5] *= -1.0
    assert torch.allclose(replace_target(q, k, v, 4, eq), attend(scaled, v[1:2]), atol=1e-6)
    identity = torch.arange(7)
    assert torch.allclose(refine_target(q, k, v, 4, identity, torch.ones(7), eq), attend(scaled, v[1:2]), atol=1e-6)


def test_mutual_self_attention_reads_source_keys_and_values():
    from invertedit.attention.maps import attend, attention_probs
    from invertedit.techniques.masactrl.mutual import MutualSchedule, mutual_target

    q, k, v = qkv(m=16)
    assert torch.allclose(mutual_target(q, k, v, 4), attend(attention_probs(q[1:2], k[:1], 4), v[:1]))
    s = MutualSchedule()
    assert [s.active(st, la) for st, la in ((3, 15), (4, 9), (4, 10), (49, 15))] == [False, False, True, True]


def test_mask_guided_mutual_attention_keeps_object_and_background_apart():
    from invertedit.techniques.masactrl.mutual import masked_mutual_target, mutual_target

    q, k, v = qkv(m=16)
    everywhere = torch.ones(16, dtype=torch.bool)
    assert torch.equal(masked_mutual_target(q, k, v, 4, everywhere, everywhere), mutual_target(q, k, v, 4))
    src_fg = torch.arange(16) < 6
    tgt_fg = torch.arange(16) % 2 == 0
    out = masked_mutual_target(q, k, v, 4, src_fg, tgt_fg)
    fg = attend(attention_probs(q[1:2], k[:1, src_fg], 4), v[:1, src_fg])
    bg = attend(attention_probs(q[1:2], k[:1, ~src_fg], 4), v[:1, ~src_fg])
    assert torch.allclose(out[:, tgt_fg], fg[:, tgt_fg], atol=1e-6)
    assert torch.allclose(out[:, ~tgt_fg], bg[:, ~tgt_fg], atol=1e-6)


def test_per_word_cross_attention_schedule():
    q, k, v = qkv(m=7)
    s = ReplaceSchedule(cross=0.5, words=((2, 0.2), (3, 0.9)), length=7)
    # per-word rows as the reference's table: int(f * 11) steps of 10 (0.2: 2, 0.5: 5, 0.9: 9)
    assert s.injects("cross", 8, 10, 16, 64) and not s.injects("cross", 9, 10, 16, 64)
    assert s.word_alphas(1, 10).tolist() == [1, 1, 1, 1, 1, 1, 1]
    assert s.word_alphas(2, 10).tolist() == [1, 1, 0, 1, 1, 1, 1]
    assert s.word_alphas(5, 10).tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert ReplaceSchedule().word_alphas(0, 10) is None
    ones, zeros = torch.ones(7), torch.zeros(7)
    assert torch.equal(replace_target(q, k, v, 4, alphas=ones), replace_target(q, k, v, 4))
    assert torch.allclose(replace_target(q, k, v, 4, alphas=zeros), attend(attention_probs(q[1:2], k[1:2], 4), v[1:2]))


def test_value_mixes_give_every_edit_without_its_maps():
    """Prompt-to-Prompt's controllers' edits as ``P_s @ A + P_t @ B`` (``cross_columns`` and
    ``value_mixes``): the target's output is attention of the source's queries and keys on
    ``A @ V_t`` plus its own on ``B @ V_t``, equal to the explicit maps (``replaced_maps`` /
    ``refined_maps``) for replace with and without a word swap, refine, reweight (wrapping
    either) and per-word fractions, alone and together."""
    from invertedit.attention.controllers import AttentionRefine, AttentionReplace, AttentionReweight
    from invertedit.attention.prompt_to_prompt import refined_maps, replaced_maps

    g = torch.Generator().manual_seed(0)
    length, heads = 77, 2
    q, k, v = torch.randn(2, 16, 8, generator=g), torch.randn(2, length, 8, generator=g), torch.randn(2, length, 8, generator=g)
    eq = torch.ones(length)
    eq[3], eq[5] = 2.5, -0.5
    words = torch.ones(length)
    words[4] = words[6] = 0.0
    swap = torch.eye(length)
    swap[4, 4], swap[4, 5], swap[4, 6] = 0.0, 0.5, 0.5
    mapper = torch.arange(length)
    mapper[5:] = torch.arange(4, length - 1)
    alphas = torch.ones(length)
    alphas[4] = 0.0

    def fused(a, b):
        out = attend(attention_probs(q[:1], k[:1], heads), (a @ v[1])[None])
        return out if b is None else out + attend(attention_probs(q[1:], k[1:], heads), (b @ v[1])[None])

    def reweighted(edit, e):
        return edit if e is None else AttentionReweight(edit, e)

    schedule = ReplaceSchedule(length=length)
    for e in (None, eq):
        for w in (None, words):
            for s in (None, swap):
                a, b = reweighted(AttentionReplace(schedule, s), e).mixes(w, torch.device("cpu"))
                assert (b is None) == (w is None)
                assert torch.allclose(fused(a, b), attend(replaced_maps(q, k, heads, e, w, s), v[1:2]), atol=1e-6)
            a, b = reweighted(AttentionRefine(schedule, mapper, alphas), e).mixes(w, torch.device("cpu"))
            assert torch.allclose(fused(a, b), attend(refined_maps(q, k, heads, mapper, alphas, e, w), v[1:2]), atol=1e-6)


def test_word_pattern_is_none_while_every_token_takes_the_source_map():
    schedule = ReplaceSchedule(cross=0.5, words=((3, 0.2),), length=8)
    assert schedule.word_pattern(0, 10) is None                       # every token still injected
    assert schedule.word_pattern(3, 10) == (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0)
    assert torch.equal(torch.tensor(schedule.word_pattern(3, 10)), schedule.word_alphas(3, 10))
    assert ReplaceSchedule(length=8).word_pattern(3, 10) is None


def test_controllers_as_policies_edit_the_conditional_target_row_in_one_call():
    """Prompt-to-Prompt's controllers (``attention/controllers.py``) run as attention policies: one
    attention call for every row, the conditional chunk's target row edited as the explicit maps
    say (replace, reweight on top of it, refine; self-attention takes the source's maps), every
    other row plain attention."""
    from invertedit.attention.controllers import AttentionRefine, AttentionReplace, AttentionReweight
    from invertedit.attention.policy import Where
    from invertedit.attention.prompt_to_prompt import refine_target

    g = torch.Generator().manual_seed(1)
    heads, length = 2, 7
    q, k, v = (torch.randn(4, n, 8, generator=g) for n in (16, length, length))
    calls = []

    def plain(q, k, v):
        calls.append(q.shape[0])
        return attend(attention_probs(q, k, heads), v)

    def where(cross: bool) -> Where:
        return Where(cross=cross, block=("input", 1), depth=0, chunks=(1, 0), rows=2, heads=heads, latent_hw=(8, 8),
                     attend=plain, maps=lambda q, k: attention_probs(q, k, heads), clock=lambda: (0, 10))

    schedule = ReplaceSchedule(length=length)
    eq = torch.ones(length)
    eq[2] = 3.0
    mapper = torch.arange(length)
    mapper[4:] = torch.arange(3, length - 1)
    alphas = torch.ones(length)
    alphas[3] = 0.0
    s, t = q[2:4], k[2:4]   # the conditional chunk's pair
    cases = [(AttentionReplace(schedule), True, replace_target(s, t, v[2:4], heads)),
             (AttentionReweight(AttentionReplace(schedule), eq), True, replace_target(s, t, v[2:4], heads, equalizer=eq)),
             (AttentionRefine(schedule, mapper, alphas), True, refine_target(s, t, v[2:4], heads, mapper, alphas)),
             (AttentionReplace(schedule), False, attend(attention_probs(q[2:3], k[2:3], heads), v[3:4]))]
    for policy, cross, target in cases:
        calls.clear()
        out = policy.attention(q, k, v, where(cross), None)
        refine = cross and isinstance(policy, AttentionRefine)
        assert calls == [5 if refine else 4], calls   # one call (refine: an extra row for the conditional target)
        assert torch.allclose(out[3:4], target, atol=1e-5)
        assert torch.allclose(out[:3], plain(q[:3], k[:3], v[:3]), atol=1e-5)
