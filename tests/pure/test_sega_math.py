import torch

from invertedit.guidance.concepts import Concept
from invertedit.techniques.sega.guidance import SegaState, sega_eps


def preds(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 4, 8, 8, generator=g) for _ in range(4)]


def test_zero_scale_is_plain_cfg_exactly():
    u, t, a, b = preds()
    out = sega_eps(u, t, [a, b], 20, 7.5, [Concept(scale=0.0, warmup=0), Concept(scale=0.0, warmup=0)], 0.0, 0.4, SegaState())
    assert torch.equal(out, u + 7.5 * (t - u))


def test_adding_and_removing_the_same_concept_cancels():
    u, t, a, _ = preds(1)
    both = [Concept(scale=5.0, warmup=0, threshold=0.9), Concept(scale=5.0, warmup=0, threshold=0.9, reverse=True)]
    out = sega_eps(u, t, [a, a], 3, 7.5, both, 0.0, 0.4, SegaState())
    assert torch.allclose(out, u + 7.5 * (t - u), atol=1e-6)


def test_threshold_keeps_the_top_share_per_channel_and_warmup_waits():
    u, t, a, _ = preds(2)
    state = SegaState()
    before = sega_eps(u, t, [a], 4, 7.5, [Concept(scale=1.0, warmup=5, threshold=0.9)], 0.0, 0.4, state)
    assert torch.equal(before, u + 7.5 * (t - u))                        # still warming up
    sega_eps(u, t, [a], 5, 7.5, [Concept(scale=1.0, warmup=5, threshold=0.9)], 0.0, 0.4, state)
    kept = (state.applied[-1] != 0).float().mean(dim=(2, 3))
    assert torch.allclose(kept, torch.full_like(kept, 0.1), atol=0.02)  # the top 10% of each channel


def test_momentum_accumulates_during_warmup():
    u, t, a, _ = preds(3)
    state = SegaState()
    c = [Concept(scale=2.0, warmup=2, threshold=0.0)]
    for step in range(2):
        sega_eps(u, t, [a], step, 7.5, c, 0.5, 0.4, state)
    assert float(state.momentum.abs().sum()) > 0 and state.applied == []
    out = sega_eps(u, t, [a], 2, 7.5, c, 0.5, 0.4, state)
    assert not torch.equal(out, u + 7.5 * (t - u) + 2.0 * (a - u))    # momentum added on top
