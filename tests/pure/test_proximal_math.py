"""ProxEdit's proximal guidance (``techniques/proximal/guidance.py``): the operators element by element as the
reference code computes them, the threshold, the mask, the pull, and the exact limits."""
import pytest
import torch

from invertedit.techniques.proximal.guidance import (ProxSettings, edit_mask, in_window, prox_threshold, proximal_eps,
                                          pulled_next, shrink)

VALUES = torch.tensor([-3.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0])
ONE = torch.tensor(1.0)


def test_l0_is_soft_shrinkage():
    assert torch.equal(shrink(VALUES, ONE, "l0"), torch.tensor([-2.0, -0.5, 0, 0, 0, 0, 0, 0.5, 2.0]))


def test_l1_is_the_reference_codes_second_shrink():
    # the code: s = l0(d); s = where(s > 0, s - thr, s); s = where(s < 0, s + thr, s). Worked by hand:
    # -3 -> -2 -> -2 -> -1;  -1.5 -> -0.5 -> -0.5 -> 0.5 (a sign flip);  1.5 -> 0.5 -> -0.5 -> 0.5;  3 -> 2 -> 1 -> 1
    assert torch.equal(shrink(VALUES, ONE, "l1"), torch.tensor([-1.0, 0.5, 0, 0, 0, 0, 0, 0.5, 1.0]))
    assert torch.equal(shrink(torch.tensor([2.0, -2.0]), ONE, "l1"), torch.tensor([0.0, 0.0]))   # 2 -> 1 -> 0 -> 0


def test_unknown_operator_is_refused():
    with pytest.raises(ValueError, match="prox must be one of"):
        shrink(VALUES, ONE, "l2")
    with pytest.raises(ValueError, match="pull must be one of"):
        ProxSettings(pull="sideways")


def test_threshold_is_a_quantile_over_everything_or_a_fixed_value():
    delta = torch.cat([torch.zeros(1, 1, 2, 2), torch.arange(1.0, 5.0).reshape(1, 1, 2, 2)])   # the source row: zeros
    assert float(prox_threshold(delta, 0.5)) == pytest.approx(0.5)     # over all 8 values: between 0 and 1
    assert float(prox_threshold(delta[1:], 0.5)) == pytest.approx(2.5)  # over the target row only
    assert float(prox_threshold(delta, 1.0)) == 4.0
    assert float(prox_threshold(delta, -0.25)) == 0.25 and float(prox_threshold(delta, 0.0)) == 0.0


def test_edit_mask_dilates_per_channel():
    shrunk = torch.zeros(1, 2, 5, 5)
    shrunk[0, 0, 2, 2] = 3.0
    assert torch.equal(edit_mask(shrunk, ONE, 0)[0, 0], (shrunk[0, 0] > 1).float())
    dilated = edit_mask(shrunk, ONE, 1)
    assert dilated[0, 0].sum() == 9 and dilated[0, 0, 1:4, 1:4].sum() == 9 and dilated[0, 1].sum() == 0
    assert edit_mask(shrunk, torch.tensor(3.0), 1).sum() == 0      # strictly above the threshold


def test_window():
    assert in_window(201.0, 400) and not in_window(401.0, 400) and not in_window(399.0, 0)
    assert in_window(801.0, -500) and not in_window(401.0, -500)


def preds(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)


ALL = torch.tensor([True, True])


def test_quantile_zero_is_plain_cfg_and_one_is_the_unconditional_prediction_exactly():
    u, c = preds()
    plain, keep = proximal_eps(u, c, 7.5, ProxSettings(quantile=0.0, pull="none"), ALL, 0, 999.0)
    assert torch.equal(plain, u + 7.5 * (c - u)) and keep is None
    kept, _ = proximal_eps(u, c, 7.5, ProxSettings(quantile=1.0, pull="none"), ALL, 0, 999.0)
    assert torch.equal(kept, u)


def test_rows_out_of_scope_and_steps_before_the_start_get_plain_guidance():
    u, c = preds(1)
    target_only = torch.tensor([False, True])
    out, keep = proximal_eps(u, c, 7.5, ProxSettings(quantile=1.0, scope="target", recon_t=1000), target_only, 0, 10.0)
    assert torch.equal(out[0], (u + 7.5 * (c - u))[0]) and torch.equal(out[1], u[1])
    assert torch.equal(keep[0], torch.ones_like(keep[0]))         # the source row is kept whole
    early, keep = proximal_eps(u, c, 7.5, ProxSettings(start_step=3), ALL, 2, 10.0)
    assert torch.equal(early, u + 7.5 * (c - u)) and keep is None


def test_mask_only_in_the_window_and_where_the_edit_is_small():
    u, c = preds(2)
    settings = ProxSettings(quantile=0.7, dilate=0)
    _, outside = proximal_eps(u, c, 7.5, settings, ALL, 0, 600.0)
    _, keep = proximal_eps(u, c, 7.5, settings, ALL, 0, 300.0)
    delta = c - u
    thr = torch.quantile(delta.abs().flatten(), 0.7)
    assert outside is None
    assert torch.equal(keep, ((delta - delta.clamp(-thr, thr)).abs() <= thr).float())   # kept: |delta| <= 2 thr


def test_pull_moves_kept_elements_onto_the_source():
    g = torch.Generator().manual_seed(3)
    x, eps, source, point = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(4))
    keep = (torch.rand(1, 4, 8, 8, generator=g) > 0.5).float()
    sigma, sigma_next = torch.tensor(2.0), torch.tensor(1.0)
    step = x - sigma * eps + sigma_next * eps
    assert torch.allclose(pulled_next(x, sigma, sigma_next, eps, keep, ProxSettings(recon_lr=0.0), source, point), step)
    onto = pulled_next(x, sigma, sigma_next, eps, keep, ProxSettings(recon_lr=1.0), source, point)
    assert torch.allclose(onto[keep == 1], point[keep == 1], atol=1e-6) and torch.allclose(onto[keep == 0], step[keep == 0])
    clean = pulled_next(x, sigma, sigma_next, eps, keep, ProxSettings(pull="reconstruction"), source, point)
    assert torch.allclose(clean, torch.where(keep == 1, source + sigma_next * eps, step))
    both = pulled_next(x, sigma, sigma_next, eps, keep, ProxSettings(pull="both", recon_lr=0.5), source, point)
    half = torch.where(keep == 1, (x - sigma * eps + source) / 2 + sigma_next * eps, step)
    assert torch.allclose(both, torch.where(keep == 1, (half + point) / 2, step))
