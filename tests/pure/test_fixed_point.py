"""Fixed-point (ReNoise / AIDI) inversion on denoisers whose answers are known exactly."""
import pytest
import torch

from invertedit.inversion.ddim import ddim_invert, ddim_sample, eps_at
from invertedit.techniques.fixed_point.iteration import (LOW_NOISE_TIMESTEP, fixed_point_invert, fixed_point_step,
                                              model_evaluations)
from test_ddim import gaussian_denoiser, sd_sigmas


def sd_sigma_at(timestep: int) -> float:
    """SD's scaled-linear sigma at a DDPM timestep (what the host's model_sampling.sigma gives)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)[timestep]
    return float(((1 - abar) / abar).sqrt())


def mixing_denoiser(seed: int = 0, strength: float = 0.6):
    """A smooth nonlinear denoiser (channel mixing through tanh) on which DDIM inversion does not
    retrace itself, yet the step's fixed-point map contracts."""
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * strength

    def denoise(x, sigma):
        sig = sigma.reshape(-1, 1, 1, 1)
        return x / (1 + sig ** 2) + torch.tanh(torch.einsum("ij,bjhw->bihw", w, x)) * sig / (1 + sig)
    return denoise


def source(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def step_residuals(denoise, inverted, sigmas) -> list[float]:
    """Per step, relative residual of the implicit DDIM equation x' = x + (s' - s) eps(x', s')."""
    up, traj = sigmas.flip(0), inverted.trajectory.flip(0)
    out = []
    for i in range(len(up) - 1):
        x, x1 = traj[i], traj[i + 1]
        r = x1 - x - (up[i + 1] - up[i]) * eps_at(denoise, x1, up[i + 1])
        out.append(float(r.norm() / x1.norm()))
    return out


def test_no_iterations_is_ddim_bit_for_bit():
    denoise, x0, s = mixing_denoiser(), source(), sd_sigmas(8)
    ours = fixed_point_invert(denoise, x0, s, iterations=0, low_noise_sigma=sd_sigma_at(LOW_NOISE_TIMESTEP))
    assert torch.equal(ours.trajectory, ddim_invert(denoise, x0, s).trajectory)


@pytest.mark.parametrize("anderson", [0, 2])
def test_a_model_whose_noise_ignores_x_gives_ddim_exactly(anderson):
    # eps depends on sigma only: every re-evaluation returns DDIM's estimate, so the steps are DDIM's
    e = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    denoise = lambda x, sigma: x - sigma.reshape(-1, 1, 1, 1) * e * (1 + sigma.reshape(-1, 1, 1, 1)).log1p()
    x0, s = source(), sd_sigmas(6)
    ours = fixed_point_invert(denoise, x0, s, iterations=9, average=2, anderson=anderson,
                              low_noise_sigma=sd_sigma_at(LOW_NOISE_TIMESTEP))
    ref = ddim_invert(denoise, x0, s)
    assert float((ours.trajectory - ref.trajectory).abs().max()) < 1e-12


def test_residual_of_the_implicit_equation_falls_to_float_precision():
    denoise, x0, s = mixing_denoiser(strength=0.3), source(), sd_sigmas(6)
    worst = {}
    for iterations in (0, 1, 2, 4, 8, 16, 40, 100):
        inv = fixed_point_invert(denoise, x0, s, iterations=iterations, average=1)
        worst[iterations] = max(step_residuals(denoise, inv, s))
    values = list(worst.values())
    assert all(b < a for a, b in zip(values, values[1:])), worst
    assert worst[0] > 1e-2 and worst[100] < 1e-14, worst


def test_converged_inversion_is_retraced_by_the_ddim_sampler():
    # The fixed point is the exact inverse of the host's DDIM/Euler step: sampling back returns x0.
    denoise, x0, s = mixing_denoiser(), source(), sd_sigmas(6)
    fixed = fixed_point_invert(denoise, x0, s, iterations=40, average=1, anderson=2).latent
    ddim = ddim_invert(denoise, x0, s).latent
    err_fixed = float((ddim_sample(denoise, fixed, s) - x0).abs().max())
    err_ddim = float((ddim_sample(denoise, ddim, s) - x0).abs().max())
    assert err_fixed < 1e-12 and err_ddim > 1e-2, (err_fixed, err_ddim)
    # and a few steps of it beat plain DDIM at many more steps (equal model evaluations and beyond)
    few = fixed_point_invert(denoise, x0, s, iterations=9)
    err_few = float((ddim_sample(denoise, few.latent, s) - x0).abs().max())
    s50 = sd_sigmas(50)
    err_ddim50 = float((ddim_sample(denoise, ddim_invert(denoise, x0, s50).latent, s50) - x0).abs().max())
    assert err_few < err_ddim50 / 10, (err_few, err_ddim50)


def test_anderson_converges_in_fewer_evaluations():
    # AIDI: Anderson acceleration reaches a smaller residual with the same evaluations ...
    denoise, x0, s = mixing_denoiser(strength=0.3), source(), sd_sigmas(6)
    plain = max(step_residuals(denoise, fixed_point_invert(denoise, x0, s, iterations=8, average=1), s))
    fast = max(step_residuals(denoise, fixed_point_invert(denoise, x0, s, iterations=8, average=1, anderson=2), s))
    assert fast < plain / 50, (plain, fast)
    # ... and solves an affine step whose Jacobian is a multiple of the identity (a Gaussian
    # data distribution) with two evaluations past DDIM's, where plain iteration only contracts
    g = gaussian_denoiser(0.3, 0.5)
    x, s0, s1 = source(), torch.tensor(0.4, dtype=torch.float64), torch.tensor(1.1, dtype=torch.float64)
    for anderson, bound in ((1, 1e-10), (0, None)):
        x1 = fixed_point_step(g, x, s0, s1, estimates=3, average=1, anderson=anderson)
        r = float((x1 - x - (s1 - s0) * eps_at(g, x1, s1)).norm() / x1.norm())
        if bound:
            assert r < bound, r
        else:
            assert r > 1e-4, r


def test_evaluations_and_averaging_follow_renoise():
    # A model that returns its call number as the noise shows which estimates each step averages.
    calls = []

    def counting(x, sigma):
        calls.append(float(sigma[0]))
        return x - sigma.reshape(-1, 1, 1, 1) * float((len(calls) - 1) % 1000)

    s = sd_sigmas(4)                             # DDIM timesteps 1, 251, 501, 751: only the first is below 250
    low = sd_sigma_at(LOW_NOISE_TIMESTEP)
    x0 = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    inv = fixed_point_invert(counting, x0, s, iterations=9, average=2, low_noise_sigma=low)
    assert len(calls) == 5 + 10 + 10 + 10 == model_evaluations(s, 9, low) == 35
    up, traj = s.flip(0), inv.trajectory.flip(0)
    steps = [(traj[i + 1] - traj[i]) / (up[i + 1] - up[i]) for i in range(4)]
    # step 0: calls 0..4, all averaged (ReNoise's first-step range (0, 5)); then the last 2 of 10 each
    assert [float(e.flatten()[0]) for e in steps] == pytest.approx([2.0, 13.5, 23.5, 33.5], abs=1e-9)
    calls.clear()
    fixed_point_invert(counting, x0, s, iterations=2, low_noise_sigma=None)
    assert len(calls) == 12 == model_evaluations(s, 2, None)


def test_trajectory_layout_and_callback():
    seen = []
    out = fixed_point_invert(gaussian_denoiser(0.0, 1.0), torch.ones(1, 1, 2, 2, dtype=torch.float64), sd_sigmas(3),
                             callback=lambda i, n, x: seen.append((i, n)), iterations=2)
    assert out.trajectory.shape == (4, 1, 1, 2, 2) and out.clues == {}
    assert seen == [(0, 3), (1, 3), (2, 3)]
    assert torch.equal(out.trajectory[-1], torch.ones(1, 1, 2, 2, dtype=torch.float64))


def test_rejects_bad_settings_and_schedules():
    g, x = gaussian_denoiser(0, 1), torch.zeros(1, 1, 1, 1)
    with pytest.raises(ValueError, match="descending"):
        fixed_point_invert(g, x, sd_sigmas(4).flip(0))
    with pytest.raises(ValueError, match="average"):
        fixed_point_invert(g, x, sd_sigmas(4), average=0)
    with pytest.raises(ValueError, match="iterations"):
        fixed_point_invert(g, x, sd_sigmas(4), iterations=-1)
