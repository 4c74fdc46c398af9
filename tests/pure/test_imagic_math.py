"""Imagic's math (``invertedit/techniques/imagic/losses.py``) on a small differentiable model with a known answer."""
import pytest
import torch

from invertedit.techniques.imagic.losses import (denoising_loss, draw, fixed_draws, interpolate, mean_loss,
                                        random_timestep_loss)
from invertedit.personalisation.training import optimize

# SD's training noise levels: sigma_t = sqrt((1 - abar_t) / abar_t), scaled-linear betas 0.00085..0.012
_BETAS = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
_ABAR = torch.cumprod(1 - _BETAS, 0)
SIGMAS = ((1 - _ABAR) / _ABAR).sqrt().float()


def small_model(seed: int = 0):
    """eps(x, sigma, e): depends on the latent, the noise level and the text embedding ``e``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 4, generator=g) * 0.3
    w = torch.randn(4, 8, generator=g) * 0.5

    def eps(x, sigma, e):
        shift = (e.mean(dim=1) @ w.T)[:, :, None, None]             # [1, 4, 1, 1] from a [1, tokens, 8] embedding
        xin = x / torch.sqrt(1 + sigma.reshape(-1, 1, 1, 1) ** 2)    # the DDPM latent the UNet sees
        return torch.tanh(torch.einsum("ij,bjhw->bihw", a, xin) + shift)
    return eps


def test_draws_follow_the_reference_codes_global_generator_order():
    """The reference draws ``torch.randn(latent.shape)`` then ``torch.randint(1000, (1,))`` per step
    from the global generator; ``draw`` gives the same values from a generator with the same seed."""
    x0 = torch.zeros(1, 4, 8, 8)
    g = torch.Generator().manual_seed(1234)
    ours = [draw(x0, g) for _ in range(5)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        theirs = [(torch.randn(x0.shape), int(torch.randint(1000, (1,)).item())) for _ in range(5)]
    for (n1, t1), (n2, t2) in zip(ours, theirs):
        assert torch.equal(n1, n2) and t1 == t2
    assert len({t for _, t in ours}) > 1


def test_the_loss_of_the_true_noise_is_zero_and_of_a_zero_prediction_the_noise_power():
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    sigma = SIGMAS[500:501]
    oracle = denoising_loss(lambda x, s: (x - x0) / s.reshape(-1, 1, 1, 1), x0, sigma, noise)
    assert float(oracle) < 1e-10
    zero = denoising_loss(lambda x, s: torch.zeros_like(x), x0, sigma, noise)
    assert float(zero) == pytest.approx(float(noise.pow(2).mean()), rel=1e-6)


def test_embedding_optimisation_lowers_the_reconstruction_loss():
    eps = small_model()
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(1, 4, 6, 6, generator=g)
    e_tgt = torch.randn(1, 5, 8, generator=g)
    held_out = fixed_draws(tuple(x0.shape), 64, seed=99)
    before = mean_loss(lambda x, s: eps(x, s, e_tgt), x0, SIGMAS, held_out)
    e = e_tgt.clone().requires_grad_(True)
    calls = []
    with torch.enable_grad():
        losses = optimize([e], random_timestep_loss(lambda x, s: eps(x, s, e), x0, SIGMAS, torch.Generator().manual_seed(0)),
                          200, 1e-2, after_step=lambda done, total, loss: calls.append((done, total)))
    after = mean_loss(lambda x, s: eps(x, s, e.detach()), x0, SIGMAS, held_out)
    print(f"\nheld-out loss {before:.4f} -> {after:.4f}; |e_opt - e_tgt| max {float((e.detach() - e_tgt).abs().max()):.3f}")
    assert len(losses) == 200 and calls[0] == (1, 200) and calls[-1] == (200, 200)
    assert after < 0.9 * before
    assert not torch.equal(e.detach(), e_tgt)


@pytest.mark.parametrize("steps, lr", [(0, 1e-2), (5, 0.0)])
def test_zero_steps_or_zero_learning_rate_leave_the_parameters_bit_identical(steps, lr):
    eps = small_model()
    x0 = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(4))
    e0 = torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(5))
    e = e0.clone().requires_grad_(True)
    with torch.enable_grad():
        losses = optimize([e], random_timestep_loss(lambda x, s: eps(x, s, e), x0, SIGMAS, torch.Generator().manual_seed(0)),
                          steps, lr)
    assert len(losses) == steps
    assert torch.equal(e.detach(), e0)


def test_an_interrupt_before_a_step_stops_after_at_most_one_model_pass():
    eps = small_model()
    x0 = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(6))
    e = torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(7)).requires_grad_(True)
    passes = []

    def counted(x, s):
        passes.append(1)
        return eps(x, s, e)

    def interrupt(i):
        if i == 1:
            raise KeyboardInterrupt("interrupted")

    with torch.enable_grad(), pytest.raises(KeyboardInterrupt):
        optimize([e], random_timestep_loss(counted, x0, SIGMAS, torch.Generator().manual_seed(0)), 100, 1e-2,
                 before_step=interrupt)
    assert len(passes) == 1


def test_interpolation_is_exact_at_both_ends_and_linear_between():
    g = torch.Generator().manual_seed(8)
    tgt, opt = torch.randn(1, 77, 16, generator=g) * 3, torch.randn(1, 77, 16, generator=g) * 3
    tgt[0, 0, :4] = torch.tensor([-0.0, 0.0, -1e-30, 1e10])
    opt[0, 1, :4] = torch.tensor([0.0, -0.0, 1e-30, -1e10])
    assert torch.equal(interpolate(tgt, opt, 1.0), tgt)
    assert torch.equal(interpolate(tgt, opt, 0.0), opt)
    body = (slice(None), slice(2, None))   # away from the extreme values
    assert torch.allclose(interpolate(tgt, opt, 0.7)[body], (0.7 * tgt + 0.3 * opt)[body], rtol=0, atol=1e-6)
    assert torch.allclose(interpolate(tgt, opt, 1.2)[body], (tgt + 0.2 * (tgt - opt))[body], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="differ"):
        interpolate(tgt, opt[:, :10], 0.5)
