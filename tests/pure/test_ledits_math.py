import torch

from invertedit.techniques.ledits.guidance import attention_mask, ledits_eps, noise_mask, smoothing_kernel
from invertedit.guidance.concepts import Concept


def preds(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 4, 8, 8, generator=g) for _ in range(n)]


def test_masks_keep_the_top_fraction_per_image():
    guidance = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    m = noise_mask(guidance, 0.75)
    assert m.shape == (2, 1, 8, 8) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert m.flatten(1).sum(1).tolist() == [16.0, 16.0]
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0] = maps[1, 3, 3] = 1.0
    a = attention_mask(maps, 0.9, (8, 8))
    assert a.shape == (2, 1, 8, 8)
    assert a[0, 0, :2, :2].eq(1).all() and a[1, 0, -2:, -2:].eq(1).all() and a[0, 0, -2:, -2:].eq(0).all()
    assert abs(float(smoothing_kernel().sum()) - 1.0) < 1e-6


def test_zero_scale_and_cancelling_concepts_leave_the_unconditional_prediction():
    u, a, _ = preds()
    maps = [torch.rand(2, 2, 2), torch.rand(2, 2, 2)]
    zero, _ = ledits_eps(u, [a, a], 0, 500.0, [Concept(scale=0.0, warmup=0)] * 2, maps)
    assert torch.equal(zero, u)
    both = [Concept(scale=5.0, warmup=0), Concept(scale=5.0, warmup=0, reverse=True)]
    for mask in ("intersect", "attention", "noise"):
        out, used = ledits_eps(u, [a, a], 0, 500.0, both, [maps[0], maps[0]], mask)
        assert torch.allclose(out, u, atol=1e-6) and torch.equal(used[0], used[1])


def test_guidance_acts_only_inside_the_mask_and_schedule():
    u, a, b = preds(1)
    maps = [torch.rand(2, 2, 2), torch.rand(2, 2, 2)]
    concepts = [Concept(scale=3.0, warmup=2, threshold=0.5), Concept(scale=2.0, warmup=0, cooldown=4, threshold=0.5)]
    out, used = ledits_eps(u, [a, b], 1, 500.0, concepts, maps)
    assert used[0] is None and torch.allclose(out, u + 2.0 * (b - u) * used[1])
    out, used = ledits_eps(u, [a, b], 5, 500.0, concepts, maps)
    assert used[1] is None and torch.allclose(out, u + 3.0 * (a - u) * used[0])
    # above timestep 800 the intersection is the attention mask alone
    _, early = ledits_eps(u, [a, b], 5, 900.0, concepts, maps)
    _, attention = ledits_eps(u, [a, b], 5, 500.0, concepts, maps, "attention")
    assert torch.equal(early[0], attention[0]) and not torch.equal(used[0], attention[0])
