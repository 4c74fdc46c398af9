"""Prompt-to-Prompt's local blend (``attention/local_blend.py``): the step after the sampler's, and
joint attention's blend rows summed as they are and read once a step."""
from __future__ import annotations

import pytest
import torch

from invertedit.attention.local_blend import LocalBlendMaps, blend_denoised, blend_reader
from invertedit.inversion.solver import denoised_onto, euler_step


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
@pytest.mark.parametrize("known", [False, True])
def test_the_blended_predictions_step_onto_the_blend(dtype, known):
    g = torch.Generator().manual_seed(0)
    x, denoised = (torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64) for _ in range(2))
    mask = (torch.rand(1, 1, 6, 6, generator=g) > 0.5).double()
    outside = torch.cat([torch.zeros_like(mask), 1 - mask])
    sigma, sigma_next = torch.tensor(2.5, dtype=torch.float64), torch.tensor(1.75, dtype=torch.float64)
    ratio = float(sigma_next / sigma)
    steps = euler_step(x, denoised, sigma, sigma_next)
    # the source's next latent: a flow inversion's trajectory state, or the source row's own step
    source_next = torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64) if known else steps[:1]
    blend = source_next + mask * (steps[1:] - source_next)
    out = blend_denoised(*(t.to(dtype) for t in (x, denoised, outside)), ratio,
                         source_next.to(dtype) if known else None)
    assert out.dtype == dtype and out.shape == x.shape
    tol = 1e-12 if dtype == torch.float64 else 2e-2
    # the target's step from x with the blended prediction lands on the blend; where the mask keeps the target,
    # and in the source's row, the prediction is unchanged
    assert torch.allclose(euler_step(x[1:], out[1:].double(), sigma, sigma_next), blend, atol=tol * 4)
    assert torch.allclose(out[1:].double(), denoised_onto(x[1:], sigma, sigma_next, blend), atol=tol * 4)
    assert torch.equal(out[:1], denoised[:1].to(dtype))
    kept = mask.bool().expand_as(out[1:])
    assert torch.equal(out[1:][kept], denoised[1:].to(dtype)[kept])


def rows_and_reader(pairs: int, tokens: int, channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2 * pairs, tokens, channels, generator=g),
            (torch.rand(2 * pairs * channels, 2, generator=g) > 0.7).float())


def read(rows: torch.Tensor, reader: torch.Tensor, text: int, grid: tuple) -> torch.Tensor:
    """The maps of one call's rows, written out: each image token's channels through the reader."""
    return torch.einsum("rtc,rcm->mt", rows[:, text:], reader.reshape(rows.shape[0], rows.shape[2], 2)
                        ).reshape(2, 1, *grid)


def test_blend_rows_summed_as_they_are_read_as_each_calls_maps():
    text, grid = 3, (2, 3)
    maps = LocalBlendMaps([1], [2])
    expected = torch.zeros(2, 1, *grid)
    calls = [rows_and_reader(1, text + 6, 8, seed) for seed in range(3)]
    reader = calls[0][1]
    for rows, _ in calls:   # the same reader, as one plan gives every call
        maps.add_rows(rows, reader, text, grid)
        expected += read(rows, reader, text, grid)
    assert torch.allclose(maps.summed(), expected, atol=1e-5)
    # another layout (two pairs, another reader) folds the sum so far in and starts its own
    rows, reader2 = rows_and_reader(2, text + 6, 8, seed=7)
    maps.add_rows(rows, reader2, text, grid)
    expected += read(rows, reader2, text, grid)
    assert torch.allclose(maps.summed(), expected, atol=1e-5)


def test_the_reader_sums_heads_and_pairs_into_the_two_maps():
    pairs, heads, dim, tokens = 2, 3, 4, 5
    g = torch.Generator().manual_seed(3)
    rows = torch.rand(2 * pairs, tokens, heads, dim, generator=g)
    for own in (False, True):
        r = rows if own else rows[:pairs]
        got = r.flatten(2).transpose(0, 1).flatten(1) @ blend_reader(pairs, heads, dim, own)
        source = rows[:pairs, :, :, 0].sum((0, 2))
        target = rows[:pairs, :, :, 1].sum((0, 2)) + (rows[pairs:, :, :, 1].sum((0, 2)) if own else 0)
        assert torch.allclose(got, torch.stack([source, target], 1), atol=1e-6)


def test_half_precision_blend_rows_are_summed_in_float32():
    text, grid = 2, (2, 2)
    rows, reader = rows_and_reader(1, text + 4, 4, seed=1)
    maps = LocalBlendMaps([0], [1])
    for _ in range(3000):   # a half-precision running sum would stop growing near 2048
        maps.add_rows(rows.half(), reader, text, grid)
    assert maps.rows.dtype == torch.float32
    exact = 3000 * read(rows.half().float(), reader, text, grid)
    assert torch.allclose(maps.summed(), exact, rtol=1e-4)


def test_outside_is_the_references_mask_complement_in_the_latents_dtype():
    """The reference's mask written out (the maps averaged over what was added, 3x3 max-pooled, resized,
    divided by their maximum, thresholded, the source's OR-ed into the target's): ``outside`` is 1 - it in
    the target's row, 0 in the source's, whatever the count the average divides by."""
    import torch.nn.functional as F

    text, grid = 2, (8, 8)
    maps = LocalBlendMaps([0], [1], threshold=0.6)
    calls = [(rows ** 6, reader) for rows, reader in (rows_and_reader(1, text + 64, 4, seed) for seed in (2, 3))]
    reader = calls[0][1]
    for rows, _ in calls:
        maps.add_rows(rows, reader, text, grid)
    averaged = sum(read(rows, reader, text, grid) for rows, _ in calls) / 24.0
    pooled = F.interpolate(F.max_pool2d(averaged, 3, stride=1, padding=1), size=(16, 16))
    mask = (pooled / pooled.amax(dim=(2, 3), keepdim=True)) > 0.6
    expected = (~(mask[:1] | mask[1:])).to(torch.float16)
    outside = maps.outside((16, 16), torch.float16)
    assert outside.dtype == torch.float16 and outside.shape == (2, 1, 16, 16)
    assert torch.equal(outside[:1], torch.zeros_like(expected)) and torch.equal(outside[1:], expected)
    assert 0 < int(expected.sum()) < 256   # both kinds of pixel


def test_a_side_without_blend_words_masks_nothing():
    """A blend with words on one side only (a dropped object: the source's noun alone): the other map is
    zero everywhere (0 / 0 when normalised) and adds nothing to the mask, as in the reference."""
    text, grid = 2, (8, 8)
    rows, reader = rows_and_reader(1, text + 64, 4, seed=4)
    rows = rows ** 6
    reader[:, 1] = 0.0   # the target's words: none
    one_sided = LocalBlendMaps([0], [])
    one_sided.add_rows(rows, reader, text, grid)
    outside = one_sided.outside((16, 16))
    source_map = read(rows, reader, text, grid)[:1]
    pooled = torch.nn.functional.interpolate(torch.nn.functional.max_pool2d(source_map, 3, stride=1, padding=1),
                                             size=(16, 16))
    expected = ~(pooled / pooled.amax() > 0.3)
    assert torch.equal(outside[1:], expected.float()) and 0 < int(expected.sum()) < 256


def test_subtract_words_take_their_unpooled_mask_out_as_the_reference_s_substruct_words():
    """The reference's ``substruct_words`` written out: the blend words' mask (pooled, as above) times the
    complement of the subtract words' mask, made the same way but not max-pooled (``get_mask(..., False)``), the
    source's OR-ed into the target's in both. Maps 2 and 3 are the subtract words', read by a reader of 4."""
    import torch.nn.functional as F

    text, grid, pairs, heads, dim = 2, (8, 8), 1, 2, 4
    g = torch.Generator().manual_seed(11)
    rows = torch.rand(pairs, text + 64, heads, dim, generator=g) ** 6   # [rows, tokens, heads, channels]
    reader = blend_reader(pairs, heads, dim, False, count=4)
    assert reader.shape == (pairs * heads * dim, 4)
    maps = LocalBlendMaps([0], [1], threshold=0.4, subtract_source=[3], subtract_target=[3])
    assert maps.count == 4 and maps.word_columns(5).sum(0).tolist() == [1, 1, 1, 1]
    maps.add_rows(rows.flatten(2), reader, text, grid)
    each = rows[:, text:].sum((0, 2)).T.reshape(dim, 1, *grid)   # channel c of every head: map c
    assert torch.allclose(maps.summed(), each, atol=1e-5)

    def mask(m, pool):
        m = F.max_pool2d(m, 3, stride=1, padding=1) if pool else m
        m = F.interpolate(m, size=(16, 16))
        m = (m / m.amax(dim=(2, 3), keepdim=True)) > 0.4
        return m[:1] | m[1:]

    blend, sub = mask(each[:2], True), mask(each[2:], False)
    expected = ~(blend & ~sub)
    outside = maps.outside((16, 16))
    assert torch.equal(outside[1:], expected.float()) and torch.equal(outside[:1], torch.zeros_like(outside[:1]))
    plain = LocalBlendMaps([0], [1], threshold=0.4)
    plain.add_rows(rows[..., :2].flatten(2), blend_reader(pairs, heads, 2, False), text, grid)
    taken = plain.outside((16, 16))[1:].lt(outside[1:])   # the subtract words' pixels: blended before, kept now
    assert torch.equal(taken, (blend & sub).float().bool()) and taken.any() and (blend & ~sub).any()
