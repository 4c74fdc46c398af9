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


def test_mapper_covers_the_context_and_keeps_padding_in_order():
    src = [S, A, RED, CIRCLE, E]
    tgt = [S, A, FLUFFY, RED, CIRCLE, E]
    mapper, alphas = refine_mapper(src, tgt, 10)
    assert mapper.tolist() == [0, 1, 0, 2, 3, 4, 5, 6, 7, 8]
    assert alphas.tolist() == [1, 1, 0, 1, 1, 1, 1, 1, 1, 1]


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
