import torch

from invertedit.inversion.solver import denoised_onto, euler_step


def test_the_corrected_step_lands_on_the_target():
    g = torch.Generator().manual_seed(0)
    x, target = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64), torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    for sigma, nxt in [(14.6, 12.1), (1.0, 0.5), (0.03, 0.0)]:
        s, n = torch.tensor(sigma, dtype=torch.float64), torch.tensor(nxt, dtype=torch.float64)
        assert torch.allclose(euler_step(x, denoised_onto(x, s, n, target), s, n), target, rtol=0, atol=1e-12)
    # the final step (to sigma 0) lands on the source itself: denoised is the target
    assert torch.equal(denoised_onto(x, torch.tensor(0.5), torch.tensor(0.0), target.float()), target.float())
