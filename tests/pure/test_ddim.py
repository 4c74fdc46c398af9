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
    from invertedit.techniques.edict.coupled import edict_invert, edict_sample

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


# ------------------------------------------------------------------ the parameterisation is a parameter

from invertedit.inversion.parameterisation import EPS, FLOW, PARAMETERISATIONS, V  # noqa: E402


def flow_sigmas(steps: int) -> torch.Tensor:
    """A flow model's schedule: descending from 1 (pure noise) to 0 (the image)."""
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def test_flow_euler_inversion_then_sampling_on_a_constant_velocity_field_recovers_the_input():
    """A flow model predicting a constant velocity ``v = noise - x0`` (the host's CONST: denoised =
    x - sigma * v): each Euler step is exact, so the inversion walks the straight path
    ``(1 - sigma) x0 + sigma noise`` to the noise itself, and sampling walks it back to ``x0``."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    noise = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    v = noise - x0
    seen = []

    def denoise(x, sigma):
        seen.append(x)
        return x - sigma.reshape(-1, 1, 1, 1) * v

    s = flow_sigmas(10)
    inv = ddim_invert(denoise, x0, s, parameterisation=FLOW)
    for i in range(len(s)):
        assert torch.allclose(inv.trajectory[i], FLOW.noised(x0, noise, s[i]), rtol=0, atol=1e-12), i
    # a flow model sees the latent itself: the inversion evaluates the current latent unscaled
    assert all(torch.equal(a, b) for a, b in zip(seen, inv.trajectory.flip(0)[:-1]))
    assert torch.allclose(ddim_sample(denoise, inv.latent, s), x0, rtol=0, atol=1e-12)


def test_flow_and_eps_inversions_are_one_loop_with_another_evaluation_point():
    """The step is the same formula in every parameterisation; only where the model is evaluated
    differs: DDIM's current-latent-at-the-next-level rescaling for eps/v models, none for flow."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)
    s0, s1 = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    inputs = []

    def denoise(z, sigma):
        inputs.append(z)
        return 0.5 * z

    flow, eps = (ddim_invert_step(denoise, x, s0, s1, p) for p in (FLOW, EPS))
    assert torch.equal(inputs[0], x)
    assert torch.equal(inputs[1], x * torch.sqrt((1 + s1 ** 2) / (1 + s0 ** 2)))
    for z, out in zip(inputs, (flow, eps)):
        assert torch.equal(out, x + (s1 - s0) * ((z - 0.5 * z) / s1))


def test_parameterisations_relate_x_to_the_clean_latent_and_the_noise():
    g = torch.Generator().manual_seed(2)
    x0, n = torch.randn(2, 3, generator=g, dtype=torch.float64), torch.randn(2, 3, generator=g, dtype=torch.float64)
    sigma = torch.tensor(0.4, dtype=torch.float64)
    assert PARAMETERISATIONS == {"eps": EPS, "v": V, "flow": FLOW}
    for p in (EPS, V):   # the host's k-diffusion form; the model sees the DDPM latent
        assert torch.equal(p.noised(x0, n, sigma), x0 + sigma * n)
        assert torch.equal(p.model_scale(sigma), 1.0 / torch.sqrt(1 + sigma ** 2))
        # at the next level the model sees the same latent
        assert torch.allclose(p.at_level(x0, sigma, 2 * sigma) * p.model_scale(2 * sigma), x0 * p.model_scale(sigma),
                              rtol=0, atol=1e-15)
    assert torch.equal(FLOW.noised(x0, n, sigma), sigma * n + (1 - sigma) * x0)
    assert torch.equal(FLOW.noised(x0, n, torch.tensor(1.0, dtype=torch.float64)), n)
    assert torch.equal(FLOW.model_scale(sigma), torch.ones_like(sigma))
    assert FLOW.at_level(x0, sigma, 2 * sigma) is x0
