"""Attentive Eraser's pure math (``invertedit/techniques/attentive_eraser/aas.py`` and ``sarg.py``): AAS against
the authors' formula written out (``AAS/AAS.py``'s ``attn_batch``: logits plus the dtype's lowest number on the
object's keys, the similarity-suppressed logits of the object's queries, each query its side's output), the
mask's preparation (torchvision's Gaussian, the 0.1 threshold, the max-pool to a grid), SARG's combination and the
background kept on the trajectory, exactly."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from invertedit.techniques.attentive_eraser.aas import (MASK_THRESHOLD, AasSchedule, AttentionActivationSuppression,
                                                        aas_attention, blur, gaussian_kernel, pooled, removal_mask)
from invertedit.techniques.attentive_eraser.sarg import SargPolicy, keep_background, sarg

HEADS, D = 2, 8


def _qkv(n: int = 16, b: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, n, HEADS * D, generator=g, dtype=torch.float64) for _ in range(3)]


def authors(q, k, v, heads, mask, similarity, ss_scale):
    """``AAS.attn_batch`` (is_mask_attn) as the code writes it, on ``[B, N, heads*d]`` inputs."""
    b, n, hd = q.shape
    d = hd // heads
    qh, kh, vh = (t.reshape(b, n, heads, d).permute(0, 2, 1, 3).reshape(b * heads, n, d) for t in (q, k, v))
    sim = torch.einsum("h i d, h j d -> h i j", qh, kh) * d ** -0.5
    flat = mask.flatten(0).to(sim.dtype)
    if similarity:
        sim_bg = sim + flat.masked_fill(flat == 1, torch.finfo(sim.dtype).min)
        sim_fg = ss_scale * sim
        sim_fg = sim_fg + flat.masked_fill(flat == 1, torch.finfo(sim.dtype).min)
        sim = torch.cat([sim_fg, sim_bg], dim=0)
    else:
        sim = sim + flat.masked_fill(flat == 1, torch.finfo(sim.dtype).min)
    attn = sim.softmax(-1)
    if len(attn) == 2 * len(vh):
        vh = torch.cat([vh] * 2)
    out = torch.einsum("h i j, h j d -> h i d", attn, vh)
    out = out.reshape(-1, b, heads, n, d).permute(0, 1, 3, 2, 4).reshape(-1, b, n, hd)
    if similarity:
        fg, bg = out[0], out[1]
        m = flat.reshape(-1, 1)
        return fg * m + bg * (1 - m)
    return out[0]


@pytest.mark.parametrize("similarity", [False, True])
def test_aas_is_the_authors_attention(similarity):
    q, k, v = _qkv()
    mask = torch.zeros(16)
    mask[[1, 2, 5, 6]] = 1
    ours = aas_attention(q, k, v, HEADS, mask.bool(), similarity, 0.3)
    assert torch.allclose(ours, authors(q, k, v, HEADS, mask, similarity, 0.3), atol=1e-12, rtol=0)


def test_no_object_is_plain_attention_and_no_key_of_the_object_is_read():
    q, k, v = _qkv()
    none = torch.zeros(16, dtype=torch.bool)
    plain = F.scaled_dot_product_attention(*(t.reshape(1, 16, HEADS, D).transpose(1, 2) for t in (q, k, v)))
    assert torch.allclose(aas_attention(q, k, v, HEADS, none, False, 0.3), plain.transpose(1, 2).reshape(1, 16, -1),
                          atol=1e-12, rtol=0)
    obj = torch.zeros(16, dtype=torch.bool)
    obj[3:7] = True
    v2 = v.clone()
    v2[:, obj] = 1e3   # the object's values: never read
    for similarity in (False, True):
        assert torch.allclose(aas_attention(q, k, v, HEADS, obj, similarity, 0.3),
                              aas_attention(q, k, v2, HEADS, obj, similarity, 0.3), atol=1e-12, rtol=0)


def test_similarity_suppression_changes_only_the_objects_queries_and_scale_1_is_none():
    q, k, v = _qkv()
    obj = torch.zeros(16, dtype=torch.bool)
    obj[3:7] = True
    on, off = aas_attention(q, k, v, HEADS, obj, True, 0.3), aas_attention(q, k, v, HEADS, obj, False, 0.3)
    assert torch.equal(on[:, ~obj], off[:, ~obj])
    assert not torch.allclose(on[:, obj], off[:, obj])
    assert torch.allclose(aas_attention(q, k, v, HEADS, obj, True, 1.0), off, atol=1e-12, rtol=0)


def test_a_grid_all_object_attends_uniformly_as_the_code_in_float32():
    q, k, v = (t.float() for t in _qkv())
    every = torch.ones(16, dtype=torch.bool)
    out = aas_attention(q, k, v, HEADS, every, False, 0.3)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, v.mean(dim=1, keepdim=True).expand_as(v), atol=1e-5)


def test_half_inputs_are_computed_in_float32_and_returned_in_half():
    q, k, v = (t.half() for t in _qkv())
    obj = torch.zeros(16, dtype=torch.bool)
    obj[:4] = True
    out = aas_attention(q, k, v, HEADS, obj, True, 0.3)
    assert out.dtype == torch.float16
    ref = aas_attention(q.double(), k.double(), v.double(), HEADS, obj, True, 0.3)
    assert (out.double() - ref).abs().max() < 2e-3


def test_gaussian_is_torchvisions_default_for_the_kernel_size():
    k = gaussian_kernel(7, torch.float64)
    sigma = 0.3 * ((7 - 1) * 0.5 - 1) + 0.8   # 1.4
    x = torch.arange(7, dtype=torch.float64) - 3
    want = torch.exp(-x ** 2 / (2 * sigma ** 2))
    assert torch.allclose(k, want / want.sum(), atol=1e-15, rtol=0)
    assert blur(torch.ones(1, 1, 9, 9), 7).sub(1).abs().max() < 1e-6   # reflect padding keeps a flat mask flat


def test_the_mask_is_dilated_by_the_blur_and_its_threshold():
    m = torch.zeros(1, 32, 32)
    m[:, 10:20, 10:20] = 1
    assert torch.equal(removal_mask(m, (32, 32), 0)[0], m)
    dilated = removal_mask(m, (32, 32), 7)[0, 0]
    blurred = blur(m[None].float(), 7)[0, 0]
    assert torch.equal(dilated, (blurred >= MASK_THRESHOLD).float())
    assert dilated.sum() > m.sum() and bool(dilated[m[0] > 0].all())
    assert set(dilated.unique().tolist()) <= {0.0, 1.0}


def test_a_grid_cell_is_the_objects_when_any_of_its_pixels_is():
    m = torch.zeros(1, 1, 64, 64)
    m[..., 9, 17] = 1
    assert torch.equal(pooled(m, (8, 8)), F.max_pool2d(m, 8).round())
    assert pooled(m, (8, 8)).sum() == 1 and pooled(m, (8, 8))[0, 0, 1, 2] == 1


def test_sarg_is_plain_plus_scale_times_the_difference():
    g = torch.Generator().manual_seed(1)
    plain, removal = torch.randn(2, 1, 4, 8, 8, generator=g, dtype=torch.float64)
    assert torch.allclose(sarg(plain, removal, 9.0), plain + 9.0 * (removal - plain), atol=1e-12, rtol=0)
    assert torch.allclose(sarg(plain, removal, 1.0), removal, atol=1e-15, rtol=0)
    assert torch.equal(sarg(plain, removal, 0.0), plain)


@pytest.mark.parametrize("ratio", [0.7, 0.0])
def test_the_step_lands_on_the_trajectory_outside_and_on_its_own_inside(ratio):
    g = torch.Generator().manual_seed(2)
    x, denoised, target = torch.randn(3, 1, 4, 8, 8, generator=g, dtype=torch.float64)
    inside = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    inside[..., 2:5, 3:6] = 1
    kept = keep_background(x, denoised, inside, ratio, target)
    step = kept + ratio * (x - kept)   # DDIM / Euler from x with the prediction
    own = denoised + ratio * (x - denoised)
    assert torch.allclose(step, inside * own + (1 - inside) * target, atol=1e-12, rtol=0)


def _where(chunks, step, layer=("output", 3, 0), rows=1):
    calls = []

    def attend(q, k, v):
        calls.append(q.shape[0])
        return q * 0 + 7.0
    return SimpleNamespace(cross=False, chunks=chunks, rows=rows, heads=HEADS, latent_hw=(4, 4), step=step,
                           layer=layer, attend=attend), calls


def test_the_policy_edits_only_the_removal_branch_on_its_steps_and_layers():
    q, k, v = (t.float() for t in _qkv(b=2))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :8, :8] = 1
    schedule = AasSchedule(start_step=1, end_step=3, start_layer=1, end_layer=2, ss_steps=1, ss_scale=0.3)
    policy = AttentionActivationSuppression(schedule, {("output", 3, 0): 1, ("input", 1, 0): 0}, mask)
    where, calls = _where((0, 1), step=1)
    out = policy.attention(q, k, v, where, None)
    assert torch.equal(out[0], torch.full_like(out[0], 7.0)) and calls == [1]   # plain branch: the host's attention
    tokens = torch.zeros(16, dtype=torch.bool)
    tokens[0] = True   # the 4x4 grid's cell (0, 0) holds the 8x8 pixels of the object
    assert torch.allclose(out[1:], aas_attention(q[1:], k[1:], v[1:], HEADS, tokens, True, 0.3))
    where, _ = _where((1, 0), step=2)   # the removal branch first; past ss_steps
    out = policy.attention(q, k, v, where, None)
    assert torch.allclose(out[:1], aas_attention(q[:1], k[:1], v[:1], HEADS, tokens, False, 0.3))
    for where, _ in (_where((0, 1), step=0), _where((0, 1), step=3), _where((0, 1), 1, ("input", 1, 0)),
                     _where((0,), 1)):
        assert torch.equal(policy.attention(q[:len(where.chunks)], k[:len(where.chunks)], v[:len(where.chunks)], where,
                                            None), torch.full_like(q[:len(where.chunks)], 7.0))


def test_sarg_policy_refuses_a_run_of_other_steps_and_keeps_the_background():
    trajectory = torch.randn(5, 1, 4, 8, 8, dtype=torch.float64)
    inside = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    inside[..., :3, :3] = 1
    policy = SargPolicy(9.0, inside, trajectory)
    policy.check_run(4)
    with pytest.raises(ValueError, match="the run has 3 steps but the inversion 4"):
        policy.check_run(3)
    state = policy.make_state()
    where = SimpleNamespace(step=1, sigma_values=[4.0, 2.0, 1.0, 0.5, 0.0])
    x, denoised = torch.randn(2, 1, 4, 8, 8, dtype=torch.float64)
    out = policy.post_step(x, x, denoised, where, state)
    step = out + 0.5 * (x - out)
    assert torch.allclose(step[..., 3:, :], trajectory[2][..., 3:, :], atol=1e-12, rtol=0)
    assert torch.allclose(out[..., :3, :3], denoised[..., :3, :3], atol=1e-12, rtol=0)
