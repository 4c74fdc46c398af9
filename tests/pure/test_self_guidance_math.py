"""Self-Guidance's properties and energy (invertedit/techniques/self_guidance/terms.py) against their
definitions, exactly: a shifted map's centroid shifts by the shift, a scaled region's size by the
area, the shape of a clean map is its region, appearance is the region's mean feature, the energy
is zero at its targets, its gradients point towards them, and the guided noise of the paper's eq. 3
is what the host's denoised prediction carries. The authors released no code (see
docs/faithfulness.md); the second opinion of a public reimplementation is test_self_guidance_second_opinion.py."""
from __future__ import annotations

import math

import pytest
import torch

from invertedit.techniques.self_guidance import terms as T


def blob(h: int, w: int, x0: int, y0: int, side: int, value: float = 1.0) -> torch.Tensor:
    out = torch.zeros(h, w)
    out[y0:y0 + side, x0:x0 + side] = value
    return out


def smooth(h: int, w: int, cx: float, cy: float, spread: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * spread ** 2))


def test_centroid_is_the_weighted_mean_of_cell_centres():
    a = blob(16, 16, 3, 5, 2)   # cells x 3-4, y 5-6: centres (4 / 16, 6 / 16)
    assert torch.allclose(T.centroid(a), torch.tensor([4 / 16, 6 / 16]), atol=1e-6)
    lone = torch.zeros(8, 4)
    lone[7, 0] = 0.3
    assert torch.allclose(T.centroid(lone), torch.tensor([0.5 / 4, 7.5 / 8]), atol=1e-6)


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, -4), (5, 2)])
def test_a_shifted_map_shifts_its_centroid_exactly(dx, dy):
    a = smooth(32, 32, 12.3, 15.7, 2.0)
    shifted = torch.roll(a, shifts=(dy, dx), dims=(0, 1))   # the blob is far from the edges: nothing wraps
    got = T.centroid(shifted) - T.centroid(a)
    assert torch.allclose(got, torch.tensor([dx / 32, dy / 32]), atol=1e-6)
    # the maps' own move (the moved-shape term's target) moves it the same
    moved = T.moved(a[None], T.centroid(a), torch.tensor([dx / 32, dy / 32]), 1.0)[0]
    assert torch.allclose(moved, shifted, atol=1e-5)


def test_shape_of_a_clean_map_is_its_region_and_size_its_area():
    a = blob(16, 16, 2, 3, 4, value=0.37) + 0.01
    assert torch.allclose(T.shape(a), (a > 0.1).float(), atol=1e-6)
    assert math.isclose(float(T.size(a)), 16 / 256, rel_tol=1e-6)


@pytest.mark.parametrize("scale", [0.5, 2.0, 3.0])
def test_size_scales_with_the_area(scale):
    side = 4
    a = blob(32, 32, 8, 8, side)
    b = blob(32, 32, 8, 8, int(side * scale))
    assert math.isclose(float(T.size(b)), float(T.size(a)) * scale ** 2, rel_tol=1e-6)


def test_soft_threshold_follows_its_formula():
    a = torch.rand(2, 8, 8)
    n = (a - a.amin((-2, -1), keepdim=True)) / (a.amax((-2, -1), keepdim=True) - a.amin((-2, -1), keepdim=True))
    s = torch.sigmoid(7.0 * (n - 0.5))
    s = (s - s.amin((-2, -1), keepdim=True)) / (s.amax((-2, -1), keepdim=True) - s.amin((-2, -1), keepdim=True))
    assert torch.allclose(T.shape(a, 7.0), s, atol=1e-5)


def test_appearance_is_the_shape_weighted_mean_feature():
    shapes = torch.stack([blob(8, 8, 0, 0, 4), blob(8, 8, 4, 4, 4)])
    features = torch.randn(5, 16, 16)   # twice the maps' resolution: shapes are resampled to it
    features[:, :8, :8] = torch.arange(5.0)[:, None, None]
    looks = T.appearance(shapes, features)
    # the first region (bilinear upsampling leaks at its border only): the mean of a constant inside
    inside = T.appearance(torch.ones(1, 8, 8), features[:, :8, :8])
    assert torch.allclose(inside[0], torch.arange(5.0), atol=1e-6)
    assert looks.shape == (2, 5)
    w = torch.rand(1, 16, 16)
    assert torch.allclose(T.appearance(w, features)[0], (w * features).sum((-2, -1)) / w.sum(), atol=1e-5)


def test_targets_of_a_move_and_a_resize():
    maps = torch.stack([smooth(16, 16, 5.0, 6.0, 1.5), smooth(16, 16, 11.0, 10.0, 2.0)])
    src = T.properties(maps, torch.randn(3, 16, 16))
    target = T.targets(src, torch.tensor([0.25, -0.125]), 0.5)
    assert torch.allclose(target.centroid, src.centroid + torch.tensor([0.25, -0.125]))
    assert torch.allclose(target.size, src.size * 0.25)
    assert torch.equal(target.shapes[1:], src.shapes[1:])
    assert torch.equal(target.appearance, src.appearance)
    assert torch.allclose(T.centroid(target.shapes[0]), src.centroid + torch.tensor([0.25, -0.125]), atol=0.02)


def test_energy_is_zero_at_the_source_without_an_edit_and_its_terms_are_l1():
    maps = torch.stack([smooth(16, 16, 5.0, 6.0, 1.5), smooth(16, 16, 11.0, 10.0, 2.0)])
    features = torch.randn(3, 16, 16)
    src = T.properties(maps, features)
    w = T.Weights(1.0, 1.0, 1.0, 1.0, 1.0)
    assert float(T.energy(src, T.targets(src, torch.zeros(2), 1.0), w)) < 1e-5
    target = T.targets(src, torch.tensor([0.1, 0.2]), 1.0)
    parts = T.terms(src, target)
    assert math.isclose(float(parts["position"]), 0.3, rel_tol=1e-5)
    assert float(parts["size"]) < 1e-7 and float(parts["shape"]) == 0 and float(parts["appearance"]) == 0
    w2 = T.Weights(2.0, 0.0, 0.0, 0.0, 0.0)
    assert math.isclose(float(T.energy(src, target, w2)), 0.6, rel_tol=1e-5)


def logits_for(maps: torch.Tensor) -> torch.Tensor:
    return maps.log().clone().requires_grad_(True)


def test_position_gradient_moves_the_centroid_towards_its_target():
    a = smooth(16, 16, 5.0, 8.0, 2.0) + 1e-3
    src = T.properties(a[None], None)
    target = T.targets(src, torch.tensor([0.2, 0.0]), 1.0)
    logits = logits_for(a)
    maps = torch.softmax(logits.flatten(), 0).reshape(16, 16) * a.sum()
    g = T.energy(T.properties(maps[None], None), target, T.Weights(1.0, 0.0, 0.0, 0.0, 0.0))
    g.backward()
    # descending g raises the logits right of the centroid and lowers those left of it
    grad = logits.grad
    assert float(grad[:, 8:].sum()) < 0 < float(grad[:, :3].sum())
    step = (logits - 50.0 * grad).detach()
    after = T.centroid(torch.softmax(step.flatten(), 0).reshape(16, 16))
    assert float(after[0]) > float(src.centroid[0]) and abs(float(after[1] - src.centroid[1])) < 1e-3


def test_size_gradient_grows_or_shrinks_the_region():
    a = smooth(16, 16, 8.0, 8.0, 2.0)
    src = T.properties(a[None], None)
    for scale, sign in ((2.0, 1), (0.5, -1)):
        maps = a.clone().requires_grad_(True)
        target = T.targets(src, torch.zeros(2), scale)
        T.energy(T.properties(maps[None], None), target, T.Weights(0.0, 1.0, 0.0, 0.0, 0.0)).backward()
        # the cells at the region's edge (normalised map near 0.5) are where size changes
        edge = (T.normalise(a) - 0.5).abs() < 0.2
        assert sign * float(-maps.grad[edge].sum()) > 0


def test_guided_denoised_is_the_papers_eq_3_in_the_hosts_state():
    """eps~ = eps + v sigma_t grad_z g with z = x / sqrt(1 + sigma^2), sigma_t = sqrt(1 - abar) =
    sigma / sqrt(1 + sigma^2); the host's denoised is x - sigma eps."""
    torch.manual_seed(0)
    sigma = torch.tensor(2.5)
    x = torch.randn(1, 4, 6, 6)
    eps = torch.randn(1, 4, 6, 6)
    v = 37.0

    def g_of_z(z):
        return (z ** 3).sum() * 0.01 + z.sin().sum()

    z = (x / (1 + sigma ** 2).sqrt()).requires_grad_(True)
    grad_z = torch.autograd.grad(g_of_z(z), z)[0]
    eps_guided = eps + v * (sigma / (1 + sigma ** 2).sqrt()) * grad_z
    xg = x.clone().requires_grad_(True)
    grad_x = torch.autograd.grad(g_of_z(xg / (1 + sigma ** 2).sqrt()), xg)[0]
    got = T.guided_denoised(x - sigma * eps, grad_x, sigma, v)
    assert torch.allclose(got, x - sigma * eps_guided, atol=1e-5)


def test_image_offset_is_a_fraction_of_the_picture():
    assert T.image_offset(128, -64, 512, 256) == (0.25, -0.25)
