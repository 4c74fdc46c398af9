"""Prompt-to-Prompt's local blend (``attention/local_blend.py``): the step after the sampler's, and
joint attention's blend rows summed as they are and read once a step."""
from __future__ import annotations

import pytest
import torch

from invertedit.attention.local_blend import LocalBlendMaps, blend_denoised
from invertedit.inversion.solver import denoised_onto, euler_step


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_the_blended_prediction_steps_onto_the_blend(dtype):
    g = torch.Generator().manual_seed(0)
    x, denoised, source_next = (torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64) for _ in range(3))
    mask = (torch.rand(1, 1, 6, 6, generator=g) > 0.5).double()
    sigma, sigma_next = torch.tensor(2.5, dtype=torch.float64), torch.tensor(1.75, dtype=torch.float64)
    ratio = float(sigma_next / sigma)
    target_next = euler_step(x, denoised, sigma, sigma_next)
    blend = source_next + mask * (target_next - source_next)
    out = blend_denoised(*(t.to(dtype) for t in (x, denoised, source_next, mask)), ratio)
    assert out.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 2e-2
    # the step from x with the blended prediction lands on the blend; where the mask keeps the target, unchanged
    assert torch.allclose(euler_step(x, out.double(), sigma, sigma_next), blend, atol=tol * 4)
    assert torch.allclose(out.double(), denoised_onto(x, sigma, sigma_next, blend), atol=tol * 4)
    assert torch.equal(out[mask.bool().expand_as(out)], denoised.to(dtype)[mask.bool().expand_as(out)])


def rows_and_reader(pairs: int, tokens: int, channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2 * pairs, tokens, channels, generator=g),
            (torch.rand(2 * pairs * channels, 2 * pairs, generator=g) > 0.7).float())


def test_blend_rows_summed_as_they_are_read_as_each_calls_maps():
    text, grid, heads = 3, (2, 3), 4
    maps = LocalBlendMaps([1], [2])
    expected = torch.zeros(2, *grid)
    calls = [rows_and_reader(1, text + 6, 8, seed) for seed in range(3)]
    reader = calls[0][1]
    for rows, _ in calls:   # the same reader, as one plan gives every call
        maps.add_rows(rows, reader, text, heads, grid)
        expected += (rows[:, text:].transpose(0, 1).flatten(1) @ reader).T.reshape(2, *grid)
    assert maps.count == 3 * heads
    assert torch.allclose(maps.summed(), expected, atol=1e-5)
    # another layout (two pairs, another reader) folds the sum so far in and starts its own
    rows, reader2 = rows_and_reader(2, text + 6, 8, seed=7)
    maps.add_rows(rows, reader2, text, heads, grid)
    expected += (rows[:, text:].transpose(0, 1).flatten(1) @ reader2).T.reshape(2, 2, *grid).sum(0)
    assert maps.count == 3 * heads + 2 * heads
    assert torch.allclose(maps.summed(), expected, atol=1e-5)


def test_half_precision_blend_rows_are_summed_in_float32():
    text, grid = 2, (2, 2)
    rows, reader = rows_and_reader(1, text + 4, 4, seed=1)
    maps = LocalBlendMaps([0], [1])
    for _ in range(3000):   # a half-precision running sum would stop growing near 2048
        maps.add_rows(rows.half(), reader, text, 1, grid)
    assert maps.rows.dtype == torch.float32
    exact = 3000 * (rows.half().float()[:, text:].transpose(0, 1).flatten(1) @ reader).T.reshape(2, *grid)
    assert torch.allclose(maps.summed(), exact, rtol=1e-4)


def test_the_mask_of_summed_rows_is_made_in_the_latents_dtype():
    text, grid = 2, (2, 2)
    rows, reader = rows_and_reader(1, text + 4, 4, seed=2)
    maps = LocalBlendMaps([0], [1])
    maps.add_rows(rows, reader, text, 1, grid)
    mask = maps.mask((4, 4), torch.float16)
    assert mask.dtype == torch.float16 and mask.shape == (1, 1, 4, 4)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
