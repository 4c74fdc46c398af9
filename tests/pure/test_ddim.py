"""DDIM inversion and sampling on denoisers whose answers are known exactly."""
import pytest
import torch

from invertedit.inversion.ddim import ddim_invert, ddim_invert_step, ddim_sample


def sd_sigmas(steps: int) -> torch.Tensor:
    """SD's scaled-linear DDPM schedule at DDIM-uniform timesteps (1, 1+k, ...), descending, ending at 0."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)
    sig = ((1 - abar) / abar).sqrt()
    t = torch.arange(1, 1000, 1000 // steps)
    return torch.cat([sig[t].flip(0), torch.zeros(1, dtype=torch.float64)])


def gaussian_denoiser(mu: float, s: float):
    """The exact posterior mean for data ~ N(mu, s^2) per element."""
    def denoise(x, sigma):
        sig = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return mu + s ** 2 / (s ** 2 + sig ** 2) * (x - mu)
    return denoise


def test_constant_noise_model_inverts_exactly():
    # If the model's eps never changes, every DDIM step is exact: invert then sample returns x0.
    g = torch.Generator().manual_seed(0)
    e = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    x0 = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    denoise = lambda x, sigma: x - sigma.reshape(-1, 1, 1, 1) * e
    sigmas = sd_sigmas(10)
    traj = ddim_invert(denoise, x0, sigmas).trajectory
    assert torch.allclose(traj[0], x0 + sigmas[0] * e, rtol=0, atol=1e-10)
    back = ddim_sample(denoise, traj[0], sigmas)
    assert torch.allclose(back, x0, rtol=0, atol=1e-10)


def test_reconstruction_error_falls_as_steps_rise():
    g = torch.Generator().manual_seed(1)
    x0 = 0.3 + 0.5 * torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    denoise = gaussian_denoiser(0.3, 0.5)
    errs = []
    for steps in (10, 25, 50, 100):
        s = sd_sigmas(steps)
        xt = ddim_invert(denoise, x0, s).latent
        errs.append(float((ddim_sample(denoise, xt, s) - x0).abs().max()))
    assert errs == sorted(errs, reverse=True), errs
    assert errs[-1] < errs[0] / 4, errs


def test_trajectory_layout_and_callback():
    # the one inverter contract: the host's (descending) order in, the trajectory in sampling order out
    denoise = gaussian_denoiser(0.0, 1.0)
    s = sd_sigmas(5)
    seen = []
    out = ddim_invert(denoise, torch.ones(1, 1, 2, 2, dtype=torch.float64), s, callback=lambda i, n, x: seen.append((i, n)))
    assert out.trajectory.shape == (6, 1, 1, 2, 2) and out.clues == {}
    assert seen == [(i, 5) for i in range(5)]
    assert torch.equal(out.trajectory[-1], torch.ones(1, 1, 2, 2, dtype=torch.float64))
    assert torch.equal(out.latent, out.trajectory[0])


def test_inversion_evaluates_current_latent_at_next_timestep():
    # The step sees z_i = x_i / sqrt(1 + s_i^2) at s_{i+1}: the model input it is given is z_i * sqrt(1 + s_{i+1}^2).
    seen = {}

    def denoise(x, sigma):
        seen["x"], seen["sigma"] = x.clone(), sigma.clone()
        return torch.zeros_like(x)

    x = torch.full((1, 1, 1, 1), 2.0, dtype=torch.float64)
    s0, s1 = torch.tensor(0.5, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64)
    out = ddim_invert_step(denoise, x, s0, s1)
    assert float(seen["sigma"]) == 1.5
    assert torch.allclose(seen["x"], x / (1 + 0.25) ** 0.5 * (1 + 2.25) ** 0.5)
    eps = seen["x"] / 1.5
    assert torch.allclose(out, x + (s1 - s0) * eps)


def test_rejects_an_ascending_schedule():
    with pytest.raises(ValueError, match="descending"):
        ddim_invert(gaussian_denoiser(0, 1), torch.zeros(1, 1, 1, 1), sd_sigmas(4).flip(0))


def test_edict_inverts_exactly_even_for_a_rough_denoiser():
    from invertedit.inversion.edict import edict_invert, edict_sample

    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)

    def rough(x, sigma):   # nonlinear and far from a real denoiser: DDIM inversion would not retrace it
        return torch.tanh(torch.einsum("ij,bjhw->bihw", w, x)) * 3.0

    x0 = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    s = sd_sigmas(20)
    inverted = edict_invert(rough, x0, s)
    assert inverted.trajectory.shape[0] == len(s) and torch.equal(inverted.trajectory[-1], x0)
    bx, by = edict_sample(rough, inverted.latent, inverted.clues["edict.y"], s)
    assert float((bx - x0).abs().max()) < 1e-9 and float((by - x0).abs().max()) < 1e-9
    ddim_back = ddim_sample(rough, ddim_invert(rough, x0, s).latent, s)
    assert float((ddim_back - x0).abs().max()) > 1e-3
