"""DragDiffusion's math (``invertedit/techniques/drag_diffusion/drag.py``): the supervision grid and its points,
the bilinear patch, motion supervision, the mask term, the DDIM step, point tracking and the stop test, by exact
properties. No host."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invertedit.techniques.drag_diffusion.drag import (DragSettings, ddim_prev, grid_mask, image_points, mask_loss,
                                                       motion_loss, reached, shifted_patch, supervision_features,
                                                       supervision_points, supervision_size, track_points)


def test_the_defaults_are_the_codes():
    s = DragSettings()
    assert (s.n_pix_step, s.lr, s.r_m, s.r_p, s.lam, s.feature_idx, s.reach) == (80, 0.01, 1, 3, 0.1, 3, 2.0)


def test_points_go_to_the_half_size_grid_as_row_column_rounded():
    assert supervision_size(512, 512) == (256, 256) and supervision_size(512, 768) == (256, 384)
    handles, targets = supervision_points([((465, 415), (500, 470)), ((11, 3), (11, 3))], 512, 512)
    assert handles == [[round(207.5), 232.0], [2.0, round(5.5)]] and targets == [[235.0, 250.0], [2.0, 6.0]]
    assert image_points([[235.0, 250.0]], 512, 512) == [(500.0, 470.0)]


def test_features_are_resized_bilinearly_in_float32():
    feat = torch.randn(1, 5, 8, 8, dtype=torch.float16)
    out = supervision_features(feat, (16, 16))
    assert out.dtype == torch.float32 and out.shape == (1, 5, 16, 16)
    assert torch.equal(out, F.interpolate(feat.float(), (16, 16), mode="bilinear", align_corners=False))


@pytest.mark.parametrize("dy, dx", [(0.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.6, -0.8), (-0.28, 0.96)])
def test_the_shifted_patch_is_bilinear_sampling_at_the_moved_pixels(dy, dx):
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 12, 10)
    r1, r2, c1, c2 = 4, 7, 3, 6
    got = shifted_patch(feat, r1, r2, c1, c2, dy, dx)
    # grid_sample with align_corners=True reads pixel centres at integer coordinates: the same bilinear weights
    ys = torch.arange(r1, r2, dtype=torch.float32) + dy
    xs = torch.arange(c1, c2, dtype=torch.float32) + dx
    gy, gx = torch.meshgrid(ys / (12 - 1) * 2 - 1, xs / (10 - 1) * 2 - 1, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None].expand(2, -1, -1, -1)
    want = F.grid_sample(feat, grid, mode="bilinear", align_corners=True)
    assert torch.allclose(got, want, atol=1e-6)
    if dy == dx == 0:
        assert torch.equal(got, feat[:, :, r1:r2, c1:c2])


def test_the_shifted_patch_clamps_at_the_border():
    feat = torch.arange(16.0).reshape(1, 1, 4, 4)
    got = shifted_patch(feat, 0, 2, 0, 2, -0.5, 0.0)   # half a row above the map: the first row repeated
    assert torch.equal(got[0, 0, 0], feat[0, 0, 0, :2])
    assert torch.equal(got[0, 0, 1], (feat[0, 0, 0, :2] + feat[0, 0, 1, :2]) / 2)


def _ramp(a: float, b: float, size: int = 16) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    return (a * rows + b * cols)[None, None]


def test_motion_supervision_on_a_ramp_is_the_ramps_step_towards_the_target():
    feat = _ramp(2.0, 0.0).requires_grad_(True)
    # moving along the columns on a ramp of the rows: the moved patch is the patch
    assert motion_loss(feat, [[8.0, 5.0]], [[8.0, 12.0]], r_m=1).item() == 0.0
    # moving down by one pixel: every cell differs by the ramp's slope; (2 r_m + 1)^2 x the mean
    loss = motion_loss(feat, [[8.0, 5.0]], [[13.0, 5.0]], r_m=1)
    assert loss.item() == pytest.approx(9 * 2.0)
    loss.backward()
    # the gradient reaches only the moved patch (the still one is detached): rows 8..10, columns 5..7
    touched = feat.grad[0, 0] != 0
    assert touched[8:11, 4:7].any() and not touched[:8].any() and not touched[11:].any()
    # a diagonal target: the unit direction, weights of a fractional shift; two handles add up
    two = motion_loss(_ramp(1.0, 3.0), [[5.0, 5.0], [9.0, 9.0]], [[8.0, 9.0], [9.0, 9.5]], r_m=2)
    assert two.item() == pytest.approx(25 * abs(1.0 * 0.6 + 3.0 * 0.8))   # the second handle is within 2: skipped


def test_handles_within_reach_give_no_motion_loss_and_stop_the_loop():
    feat = torch.randn(1, 4, 16, 16)
    assert motion_loss(feat, [[5.0, 5.0]], [[6.0, 6.0]], r_m=1).item() == 0.0
    assert reached([[5.0, 5.0]], [[6.0, 6.0]]) and not reached([[5.0, 5.0], [1.0, 1.0]], [[6.0, 6.0], [3.0, 1.0]])
    assert reached([[5.0, 5.0]], [[5.0, 6.99]]) and not reached([[5.0, 5.0]], [[5.0, 7.0]])


def test_the_ddim_step_in_ddpm_space():
    torch.manual_seed(1)
    x0, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    sigma, sigma_prev = 2.5, 1.2
    abar, abar_prev = 1 / (1 + sigma ** 2), 1 / (1 + sigma_prev ** 2)
    z = abar ** 0.5 * x0 + (1 - abar) ** 0.5 * eps
    assert torch.allclose(ddim_prev(eps, z, sigma, sigma_prev), abar_prev ** 0.5 * x0 + (1 - abar_prev) ** 0.5 * eps,
                          atol=1e-6)
    assert torch.allclose(ddim_prev(eps, z, sigma, sigma), z, atol=1e-6)
    # in the host's sampler space (x = z sqrt(1 + sigma^2)) it is the Euler step d + (x - d) sigma' / sigma
    x, d = z * math.sqrt(1 + sigma ** 2), x0
    euler = d + (x - d) * sigma_prev / sigma
    assert torch.allclose(ddim_prev(eps, z, sigma, sigma_prev) * math.sqrt(1 + sigma_prev ** 2), euler, atol=1e-5)


def test_the_mask_term_counts_what_changes_outside_the_editable_region():
    prev0 = torch.zeros(1, 4, 4, 4)
    prev = torch.ones(1, 4, 4, 4)
    editable = torch.zeros(1, 1, 4, 4)
    editable[..., :2, :] = 1.0
    assert mask_loss(prev, prev0, editable, 0.1).item() == pytest.approx(0.1 * 4 * 8)
    assert mask_loss(prev, prev0, None, 0.1).item() == 0.0


def test_the_editable_mask_is_binarised_and_resized_nearest_through_the_grid():
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 8:24] = 0.7
    mask[:, 0, 0] = 0.3   # below 0.5: outside
    got = grid_mask(mask, (32, 32), (8, 8))
    want = torch.zeros(1, 1, 8, 8)
    want[..., 2:6, 1:3] = 1.0
    assert torch.equal(got, want)


def test_tracking_follows_features_moved_within_the_radius():
    torch.manual_seed(2)
    feat0 = torch.randn(1, 6, 20, 20)
    moved = torch.roll(feat0, shifts=(2, -1), dims=(2, 3))
    assert track_points(feat0, moved, [[8.0, 8.0]], [[8.0, 8.0]], r_p=3) == [[10.0, 7.0]]
    # from where the handle is now, looking for its original feature
    assert track_points(feat0, moved, [[9.0, 9.0]], [[8.0, 8.0]], r_p=3) == [[10.0, 7.0]]
    # beyond the radius it cannot be found: the best within the window (clipped at the map's border)
    far = torch.roll(feat0, shifts=(6, 0), dims=(2, 3))
    (row, col), = track_points(feat0, far, [[1.0, 1.0]], [[1.0, 1.0]], r_p=3)
    assert 0 <= row <= 4 and 0 <= col <= 4


def test_tracking_ties_go_to_the_first_pixel():
    feat = torch.zeros(1, 2, 10, 10)
    assert track_points(feat, feat, [[5.0, 5.0]], [[5.0, 5.0]], r_p=2) == [[3.0, 3.0]]
