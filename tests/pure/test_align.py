import torch

from invertedit.attention.align import align, refine_mapper, refine_probs

S, E = 49406, 49407   # CLIP start / end tokens
A, RED, CIRCLE, FLUFFY, SQUARE, ON, BLUE = 320, 736, 2117, 11889, 4148, 525, 1746


def test_inserted_word_is_new_and_the_rest_aligns():
    src = [S, A, RED, CIRCLE, ON, BLUE, E]
    tgt = [S, A, RED, FLUFFY, CIRCLE, ON, BLUE, E]
    assert align(src, tgt) == [0, 1, 2, -1, 3, 4, 5, 6]


def test_changed_word_is_a_new_token_around_aligned_words():
    src = [S, A, RED, CIRCLE, ON, BLUE, E]
    tgt = [S, A, RED, SQUARE, ON, BLUE, E]
    assert align(src, tgt) == [0, 1, 2, -1, 4, 5, 6]


def test_mapper_maps_positions_after_the_prompt_to_themselves():
    # the reference's get_mapper: end and padding positions of the target map to the same index
    src = [S, A, RED, CIRCLE, E]
    tgt = [S, A, FLUFFY, RED, CIRCLE, E]
    mapper, alphas = refine_mapper(src, tgt, 10)
    assert mapper.tolist() == [0, 1, 0, 2, 3, 4, 6, 7, 8, 9]
    assert alphas.tolist() == [1, 1, 0, 1, 1, 1, 1, 1, 1, 1]


def test_alignment_breaks_ties_as_the_reference():
    # a swapped word: the reference prefers an unmatched target token, then a skipped source token
    # (match +1, mismatch -1, gap 0), so the new word is new and the rest aligns around it
    src = [S, A, RED, CIRCLE, E]
    tgt = [S, A, BLUE, SQUARE, E]
    assert align(src, tgt) == [0, 1, -1, -1, 4]


def test_replacement_mapper_spreads_a_word_over_its_tokens():
    from invertedit.attention.align import replace_probs, replacement_mapper

    # "a cat sat" -> "a hippo sat" with hippo two tokens: positions S=0, a=1, cat=2, sat=3, E=4
    src_words, tgt_words = [[1], [2], [3]], [[1], [2, 3], [4]]
    mapper = replacement_mapper(src_words, tgt_words, [False, True, False], 8)
    assert mapper[2, 2] == 0.5 and mapper[2, 3] == 0.5          # cat's map feeds both hippo tokens, halved
    assert mapper[0, 0] == mapper[1, 1] == 1
    # after the last swapped word the reference maps each target position to the same source index
    # (its ``mapper[j, j] = 1``), so target "sat" (4) takes source position 4, not source "sat" (3)
    assert mapper[4, 4] == 1 and mapper[3].sum() == 0
    assert mapper.sum(0).tolist() == [1, 1, 0.5, 0.5, 1, 1, 1, 1]   # hippo gets half of cat in each token
    # equal token counts: the identity, i.e. replace takes the source's maps as they are
    same = replacement_mapper([[1], [2]], [[1], [2]], [False, True], 6)
    assert torch.equal(same, torch.eye(6))
    probs = torch.rand(1, 2, 3, 6)
    assert torch.equal(replace_probs(probs, same), probs)


def test_refine_probs_take_aligned_maps_and_keep_new_ones():
    g = torch.Generator().manual_seed(0)
    ps, pt = torch.rand(1, 2, 4, 6, generator=g), torch.rand(1, 2, 4, 6, generator=g)
    mapper = torch.tensor([0, 1, 0, 2, 3, 4])
    alphas = torch.tensor([1.0, 1, 0, 1, 1, 1])
    out = refine_probs(ps, pt, mapper, alphas)
    assert torch.equal(out[..., 2], pt[..., 2])
    assert torch.equal(out[..., 3], ps[..., 2]) and torch.equal(out[..., 0], ps[..., 0])
    # identical prompts: the mapper is the identity, refine is plain replacement
    m, a = refine_mapper([S, A, E], [S, A, E], 6)
    assert m.tolist() == list(range(6)) and torch.equal(refine_probs(ps, pt, m, a), ps)
