"""TokenFlow's pure math (``invertedit/techniques/tokenflow/propagation.py``), exactly: the keyframes
as the authors' code draws them, the blend's weights as their ``TokenFlowBlock`` computes them, the
nearest-neighbour field, the gather and blend, and the keyframes' extended attention with
Plug-and-Play's query/key injection."""
from __future__ import annotations

import math

import pytest
import torch

from invertedit.techniques.tokenflow.propagation import (Propagation, TokenFlowSchedule, keyframe_attention,
                                                          keyframe_draws, nearest_tokens, propagate,
                                                          propagation_weights)


def test_keyframes_are_the_authors_draws_one_per_batch():
    torch.manual_seed(5)   # the authors: seed_everything(seed), then one torch.randint per step
    theirs = [torch.randint(4, (12 // 4,)) + torch.arange(0, 12, 4) for _ in range(6)]
    ours = keyframe_draws(5, 6, 12, 4)
    assert torch.equal(ours, torch.stack(theirs))
    assert torch.equal(ours // 4, torch.arange(3).expand(6, 3))   # one keyframe in each batch
    assert torch.equal(keyframe_draws(5, 6, 12, 4), ours)         # the same seed, the same keyframes
    assert not torch.equal(keyframe_draws(6, 6, 12, 4), ours)


def test_a_shorter_last_batch_draws_within_itself():
    draws = keyframe_draws(0, 50, 10, 4)                          # batches 0-3, 4-7, 8-9
    assert draws.shape == (50, 3)
    assert bool(((draws[:, 2] >= 8) & (draws[:, 2] <= 9)).all()) and set(draws[:, 2].tolist()) == {8, 9}
    torch.manual_seed(0)
    first = torch.randint(4, (2,)) + torch.arange(0, 8, 4)        # the full batches' draw comes first, as theirs
    assert torch.equal(draws[0, :2], first)


def test_blend_weights_are_the_codes_sigmoid_of_the_distances_to_the_batches_middles():
    plan = propagation_weights(8, 4)
    assert plan.near.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and plan.far.tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    assert plan.near_share[:4].tolist() == [1.0] * 4                   # the first batch: its keyframe alone
    # batch 1: p1 = 6, p2 = 2; frame 4: d1 = 2, d2 = 2; frame 7: d1 = 1, d2 = 5
    for frame, (d1, d2) in {4: (2, 2), 5: (1, 3), 6: (0, 4), 7: (1, 5)}.items():
        assert plan.near_share[frame].item() == pytest.approx(1 / (1 + math.exp(-d2 / (d1 + d2))), abs=1e-7)
    # their code: s = arange(n) + i * n; w1 = sigmoid(d2 / (d1 + d2)), in float32
    s = torch.arange(0, 4) + 2 * 4
    d1, d2 = torch.abs(s - (2 * 4 + 2)), torch.abs(s - (1 * 4 + 2))
    assert torch.equal(propagation_weights(12, 4).near_share[8:], torch.sigmoid(d2 / (d1 + d2)))
    assert propagation_weights(12, 4).far[8:].tolist() == [1] * 4


def test_the_field_finds_each_token_in_a_permuted_keyframe():
    g = torch.Generator().manual_seed(0)
    kf = torch.randn(2, 16, 8, generator=g)
    perm = torch.randperm(16, generator=g)
    frames = torch.stack([kf[0][perm] * 3.0, kf[1], kf[1][perm]])   # scaled: the field is cosine, not distance
    near, far = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 0])
    first, second = nearest_tokens(frames, kf, near, far, group=2)
    assert torch.equal(first[0], perm) and torch.equal(first[1], torch.arange(16)) and torch.equal(first[2], perm)
    assert torch.equal(first, nearest_tokens(frames, kf, near, far, group=1)[0])   # the groups change nothing
    sim = (frames[1] / frames[1].norm(dim=-1, keepdim=True)) @ (kf[0] / kf[0].norm(dim=-1, keepdim=True)).T
    assert torch.equal(second[1], sim.argmax(dim=-1))


def test_propagation_gathers_and_blends_every_branch():
    g = torch.Generator().manual_seed(1)
    outputs = torch.randn(3, 2, 5, 4, generator=g)                 # 3 branches, 2 keyframes, 5 tokens
    plan = Propagation(torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([1.0, 0.6]))
    first = torch.tensor([[4, 3, 2, 1, 0], [0, 0, 1, 1, 2]])
    second = torch.tensor([[0, 1, 2, 3, 4], [4, 4, 4, 4, 4]])
    out = propagate(outputs, first, second, plan)
    assert out.shape == (3, 2, 5, 4)
    assert torch.equal(out[:, 0], outputs[:, 0, [4, 3, 2, 1, 0]])  # weight 1: the near keyframe's tokens exactly
    want = 0.6 * outputs[:, 1][:, [0, 0, 1, 1, 2]] + 0.4 * outputs[:, 0][:, [4, 4, 4, 4, 4]]
    assert torch.allclose(out[:, 1], want, atol=1e-6)


def attend(q, k, v, heads=2):
    b, n, c = q.shape
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, c // heads).transpose(1, 2)
    w = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(c // heads)).softmax(-1)
    return (w @ split(v)).transpose(1, 2).reshape(b, n, c)


@pytest.mark.parametrize("inject", [False, True])
def test_keyframes_attend_to_every_keyframe_of_their_branch(inject):
    g = torch.Generator().manual_seed(2)
    keyframes, tokens, c = 3, 6, 8
    q, k, v = (torch.randn(3 * keyframes, tokens, c, generator=g) for _ in range(3))   # source, uncond, cond
    out = keyframe_attention(q, k, v, 3, inject, attend)
    assert torch.allclose(out[:keyframes], attend(q[:keyframes], k[:keyframes], v[:keyframes]), atol=1e-6)
    for branch in (1, 2):
        rows = slice(branch * keyframes, (branch + 1) * keyframes)
        qb = q[:keyframes] if inject else q[rows]
        kb = (k[:keyframes] if inject else k[rows]).reshape(1, keyframes * tokens, c).expand(keyframes, -1, -1)
        vb = v[rows].reshape(1, keyframes * tokens, c).expand(keyframes, -1, -1)
        assert torch.allclose(out[rows], attend(qb, kb, vb), atol=1e-6)


def test_the_schedules_are_the_first_int_of_the_fractions_steps():
    s = TokenFlowSchedule(attention=0.5, features=0.8)
    assert [s.injects_attention(i, 5) for i in range(5)] == [True, True, False, False, False]   # int(2.5) = 2
    assert [s.injects_features(i, 5) for i in range(5)] == [True] * 4 + [False]
    assert not any(TokenFlowSchedule(0.0, 0.0).injects_features(i, 50) for i in range(50))
