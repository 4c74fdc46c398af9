import torch

from invertedit.techniques.latent_blend.blend import BlendSchedule, blend_predictions
from invertedit.inversion.solver import euler_step


def test_outside_a_hard_mask_the_target_stays_the_source_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    x = torch.randn(1, 4, 8, 8, generator=g).repeat(2, 1, 1, 1)        # both rows: the inverted latent
    sigmas = torch.linspace(10, 0, 11)
    for i in range(10):
        d = torch.randn(2, 4, 8, 8, generator=g)                        # any two different predictions
        d = blend_predictions(x, d, mask, sigmas[i], sigmas[i + 1], align=False)
        x = euler_step(x, d, sigmas[i], sigmas[i + 1])
        assert torch.equal(x[1][:, mask[0, 0] == 0], x[0][:, mask[0, 0] == 0])
    assert not torch.equal(x[1], x[0])                                  # inside, the target is its own


def test_a_late_start_aligns_the_target_once_then_keeps_it():
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    x = torch.randn(2, 4, 4, 4, generator=g, dtype=torch.float64)      # rows already apart
    sigma, nxt = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    d = torch.randn(2, 4, 4, 4, generator=g, dtype=torch.float64)
    out = blend_predictions(x, d, mask, sigma, nxt, align=True)
    x2 = euler_step(x, out, sigma, nxt)
    outside = mask[0, 0] == 0
    assert torch.allclose(x2[1][:, outside], x2[0][:, outside], atol=1e-12)
    assert torch.allclose(x2[1][:, ~outside], euler_step(x[1:], d[1:], sigma, nxt)[0][:, ~outside], atol=1e-12)


def test_schedule():
    s = BlendSchedule(0.2, 0.75)
    assert [s.blends(i, 20) for i in (3, 4, 14, 15)] == [False, True, True, False]
    assert s.first(4, 20) and not s.first(5, 20) and BlendSchedule().first(0, 20)
