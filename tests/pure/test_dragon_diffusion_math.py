"""DragonDiffusion / DiffEditor's pure math (``invertedit/techniques/dragon_diffusion/energy.py`` and
``schedule.py``): the schedule is the authors' ``Sampler.edit`` at 50 steps, the step is their DDIM step
in the host's sigma space, the masks and the start latent are ``process_move``'s and ``run_move``'s, and
the energies take their values at the cases where they are known exactly."""
from __future__ import annotations

import math

import pytest
import torch

from invertedit.techniques.dragon_diffusion.energy import (
    GUIDANCE_FACTOR,
    RegionError,
    code_shift,
    drag_energies,
    drag_masks,
    drag_region,
    dragged_start,
    guidance,
    move_edit_region,
    move_energies,
    move_masks,
    move_noise_region,
    moved_start,
    on_device,
)
from invertedit.techniques.dragon_diffusion.schedule import (
    DIFFEDITOR,
    DRAGONDIFFUSION,
    DragonSchedule,
    alpha_bar,
    ddim_variance,
    guided_step,
    host_denoised,
    travel_back,
)


def _box_mask(size: int, x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    m = torch.zeros(size, size)
    m[y0:y1, x0:x1] = 1
    return m


# ----------------------------------------------------------------------------- the schedule

def test_the_schedule_at_50_steps_is_the_codes():
    d_plus, d = DragonSchedule(50, DIFFEDITOR), DragonSchedule(50, DRAGONDIFFUSION)
    for i in range(50):
        assert d_plus.bank(i) == d.bank(i) == (i >= 5)                      # attention_processor: iter_cur >= 5
        assert d_plus.guide(i) == (i < 30 and (i % 2 == 0 or i < 10))       # Sampler.edit, alg 'D+'
        assert d.guide(i) == (i < 30)                                       # alg 'D'
        assert d_plus.sde(i) == (10 < i < 20) and not d.sde(i)
        assert d_plus.tries(i) == (3 if 20 < i < 30 and i % 2 == 0 else 1) and d.tries(i) == 1
    assert DragonSchedule(50, DIFFEDITOR, guided=False).tries(22) == 1      # energy_scale 0: no repeat
    assert not DragonSchedule(50, DIFFEDITOR, guided=False).guide(0)


def test_the_schedule_keeps_its_fractions_at_other_step_counts():
    s = DragonSchedule(20)
    assert [i for i in range(20) if s.guide(i)] == [0, 1, 2, 3, 4, 6, 8, 10]   # before 4 (10/50), even before 12
    assert [i for i in range(20) if s.sde(i)] == [5, 6, 7]
    assert [i for i in range(20) if s.tries(i) == 3] == [10]
    assert min(i for i in range(20) if s.bank(i)) == 2


def test_the_cost_at_50_steps():
    rows = DragonSchedule(50).model_rows()
    # 20 guided steps, 4 of them (22, 24, 26, 28) taken three times
    assert rows == {"cfg": 2 * (50 + 8), "bank": 45, "features": 2 * 28, "travel": 8, "backward": 2 * 28}


# ----------------------------------------------------------------------------- the step

def _code_step(z, eps_guided, eps, a, a_prev, std, noise):
    """Sampler.edit's DDIM step in the DDPM latent z (its formulas, with the unguided eps in the direction)."""
    pred_original = (z - (1 - a) ** 0.5 * eps_guided) / a ** 0.5
    direction = (1 - a_prev - std ** 2) ** 0.5 * eps
    return a_prev ** 0.5 * pred_original + direction + std * noise


@pytest.mark.parametrize("eta", [0.0, 0.4, 1.0])
def test_the_guided_step_is_the_codes_ddim_step_in_sigma_space(eta):
    g = torch.Generator().manual_seed(0)
    x, eps, guide, noise = (torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(4))
    sigma, sigma_next = torch.tensor(3.0, dtype=torch.float64), torch.tensor(1.7, dtype=torch.float64)
    a, a_prev = alpha_bar(sigma), alpha_bar(sigma_next)
    variance = (1 - a_prev) / (1 - a) * (1 - a / a_prev)          # DDIMScheduler._get_variance
    assert torch.allclose(ddim_variance(sigma, sigma_next), variance)
    std = eta * variance ** 0.5
    z_next = _code_step(x * a.sqrt(), eps + guide, eps, a, a_prev, std, noise)
    ours = guided_step(x, eps, guide, sigma, sigma_next, eta, noise)
    assert torch.allclose(ours * a_prev.sqrt(), z_next, atol=1e-12)


def test_the_step_without_noise_is_ddim_moved_by_sigma_times_the_guidance():
    g = torch.Generator().manual_seed(1)
    x, eps, guide = (torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    sigma, sigma_next = torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    assert torch.allclose(guided_step(x, eps, None, sigma, sigma_next), x + (sigma_next - sigma) * eps)
    assert torch.allclose(guided_step(x, eps, guide, sigma, sigma_next), x + (sigma_next - sigma) * eps - sigma * guide)
    assert torch.equal(guided_step(x, eps, None, sigma, torch.tensor(0.0, dtype=torch.float64)), x - sigma * eps)


def test_a_regional_eta_is_the_codes_blend_of_two_steps():
    g = torch.Generator().manual_seed(2)
    x, eps, noise = (torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    region = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    region[..., 2:5, 3:7] = 1
    sigma, sigma_next = torch.tensor(4.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    inside = guided_step(x, eps, None, sigma, sigma_next, 0.4, noise)
    outside = guided_step(x, eps, None, sigma, sigma_next, 0.0, noise)
    blend = guided_step(x, eps, None, sigma, sigma_next, 0.4 * region, noise)
    assert torch.allclose(blend, outside * (1 - region) + inside * region)   # Sampler.edit's "Regional SDE"


def test_the_host_step_lands_where_the_guided_step_does_and_travel_back_undoes_a_step():
    g = torch.Generator().manual_seed(3)
    x, x_next, eps = (torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    sigma, sigma_next = torch.tensor(5.0, dtype=torch.float64), torch.tensor(4.2, dtype=torch.float64)
    denoised = host_denoised(x, x_next, sigma, sigma_next)
    assert torch.allclose(x + (sigma_next - sigma) * (x - denoised) / sigma, x_next)       # the host's DDIM/Euler
    assert torch.allclose(travel_back(x + (sigma_next - sigma) * eps, eps, sigma, sigma_next), x)


# ----------------------------------------------------------------------------- masks and start

def test_code_shift_puts_the_region_centre_where_the_request_does():
    assert code_shift(512, 512, (150.0, 170.0), 40.0, -20.0, 1.0) == (40.0, -20.0)
    cx, cy, (bx, by), s, (dx, dy) = 256, 256, (150.0, 170.0), 0.5, (40.0, -20.0)
    ax, ay = code_shift(512, 512, (bx, by), dx, dy, s)
    # the code's map: a point p goes to (p - centre) * s + centre + s * d
    assert math.isclose((bx - cx) * s + cx + s * ax, bx + dx) and math.isclose((by - cy) * s + cy + s * ay, by + dy)


def test_move_masks_at_scale_1_are_the_region_and_its_shift_on_the_grid():
    mask = _box_mask(64, 8, 12, 24, 28)          # image 64 px, grid 16: the code's scale 4
    m = move_masks(mask, 17.0, -9.0, 1.0, (16, 16))
    assert torch.equal(m.target, m.original)
    assert torch.equal(m.current, torch.roll(m.original, (-9 // 4, 17 // 4), (0, 1)))   # int(dy // 4), int(dx // 4)
    assert torch.equal(m.other, ~(m.current | m.original))
    assert torch.equal(m.non_overlap, m.original & ~m.current) and m.has_non_overlap
    assert int(m.original.sum()) == 16                       # 4x4 cells
    assert torch.equal(move_edit_region(m, (8, 8))[0, 0].bool(), m.current[::2, ::2])
    noise = move_noise_region(m, (8, 8))[0, 0].bool()
    assert torch.equal(noise, (m.current | m.original)[::2, ::2])


def test_move_masks_resize_about_the_centre_and_refuse_leaving_the_picture():
    mask = _box_mask(64, 24, 24, 40, 40)         # a centred 16 px box: 4x4 cells
    m = move_masks(mask, 0.0, 0.0, 2.0, (16, 16))
    assert m.target.shape == (32, 32) and int(m.target.sum()) == 64 and int(m.current.sum()) == 64
    assert torch.equal(m.current.nonzero().min(0).values, torch.tensor([4, 4]))
    m = move_masks(mask, 0.0, 0.0, 0.5, (16, 16))
    assert int(m.current.sum()) == 4
    with pytest.raises(RegionError):
        move_masks(_box_mask(64, 0, 0, 16, 16), 0.0, 0.0, 2.0, (16, 16))


def test_the_start_latent_pastes_the_regions_latent_where_it_goes():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 8, 8, generator=g)
    mask = _box_mask(64, 8, 8, 24, 24)            # latent cells 1-2
    out = moved_start(x, mask, 16.0, 24.0, 1.0)   # 2 cells right, 3 down
    assert torch.equal(out[..., 4:6, 3:5], x[..., 1:3, 1:3])
    keep = torch.ones(8, 8, dtype=torch.bool)
    keep[4:6, 3:5] = False
    assert torch.equal(out[..., keep], x[..., keep])


# ----------------------------------------------------------------------------- energies

def _features(seed: int, shapes=((1, 6, 4, 4), (1, 5, 8, 8))) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g) for s in shapes]


def test_move_energies_of_features_that_agree_are_the_weights_over_five():
    feats = _features(5)
    masks = move_masks(_box_mask(64, 16, 16, 32, 32), 0.0, 0.0, 1.0, (16, 16))   # no move: nothing left behind
    edit, content = move_energies(feats, feats, masks, w_edit=4.0, w_content=6.0, w_contrast=0.2, w_inpaint=0.8)
    assert math.isclose(float(edit), 4.0 / 5, rel_tol=1e-6)        # w / (1 + 4 * 1), weights 0.5 + 0.5
    assert math.isclose(float(content), 6.0 / 5, rel_tol=1e-6)


def test_move_energies_count_the_old_place_and_their_gradient_lowers_them():
    ref = _features(6)
    masks = move_masks(_box_mask(64, 8, 8, 24, 24), 24.0, 16.0, 1.0, (16, 16))
    assert masks.has_non_overlap
    cur = [f.clone().requires_grad_(True) for f in _features(7)]
    edit, content = move_energies(cur, ref, masks, 4.0, 6.0, 0.2, 0.8)
    (edit + content).backward()
    lower = [(c - 0.05 * c.grad).detach() for c in cur]
    edit2, content2 = move_energies(lower, ref, masks, 4.0, 6.0, 0.2, 0.8)
    assert float(edit2 + content2) < float((edit + content).detach())
    # the contrast term alone: features equal to the reference in the old place cost w_contrast * 1 per map
    same = move_energies(ref, ref, masks, 0.0, 0.0, 0.2, 0.0)[1]
    assert math.isclose(float(same), 0.2, rel_tol=1e-6)


def test_guidance_takes_the_edit_gradient_inside_and_the_content_gradient_outside():
    edit, content = torch.full((1, 4, 8, 8), 2.0), torch.full((1, 4, 8, 8), -1.0)
    region = torch.zeros(1, 1, 8, 8)
    region[..., :4, :] = 1
    out = guidance(edit, content, region, GUIDANCE_FACTOR["move"])
    assert torch.allclose(out[..., :4, :], torch.tensor(0.16)) and torch.allclose(out[..., 4:, :], torch.tensor(-0.08))


def test_drag_masks_and_start_follow_process_drag():
    mask = _box_mask(64, 0, 0, 64, 32)
    masks = drag_masks(mask, [((10.0, 10.0), (30.0, 14.0))], (16, 16))
    assert masks.cells == (((2, 2), (3, 7)),)          # (y // 4, x // 4), clipped to 1..14
    assert int(masks.handles[0].sum()) == 9 and bool(masks.targets[0][2:5, 6:9].all())
    assert torch.equal(masks.other, torch.arange(16)[:, None].expand(16, 16) >= 8)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(8))
    out = dragged_start(x, masks)                        # latent cells: handle (1, 1), target (1, 3)
    assert torch.equal(out[..., 0:3, 2:5], x[..., 0:3, 0:3])
    assert torch.equal(drag_region(masks, (8, 8))[0, 0].bool(), torch.arange(8)[:, None].expand(8, 8) < 4)
    feats = _features(9)
    edit, content = drag_energies(feats, feats, masks, 4.0, 6.0, 0.2)
    # the target's patch against the handle's differs; the rest agrees: consistency w / (1 + 4) per map, averaged
    assert math.isclose(float(content), 6.0 / 5, rel_tol=1e-6)
    assert float(edit) > 0


def test_masks_move_to_a_device_as_normal_tensors():
    masks = move_masks(_box_mask(64, 8, 8, 24, 24), 8.0, 0.0, 1.0, (16, 16))
    with torch.inference_mode():
        inference = on_device(masks, torch.device("cpu"))
    moved = on_device(masks, torch.device("cpu"))
    assert torch.equal(moved.current, masks.current) and not moved.current.is_inference()
    assert inference.current.is_inference()
