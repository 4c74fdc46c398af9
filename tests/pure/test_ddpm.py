import torch

from invertedit.techniques.edit_friendly_ddpm.noise_maps import ddpm_mean, edit_friendly_invert, edit_friendly_sample
from test_ddim import sd_sigmas


def rough(x, sigma):
    g = torch.Generator().manual_seed(5)
    w = torch.randn(4, 4, generator=g, dtype=x.dtype)
    return torch.tanh(torch.einsum("ij,bjhw->bihw", w, x)) * 2.0


def test_reconstruction_is_exact_and_corrections_are_noise_sized():
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = sd_sigmas(50)[14:]                     # skip the noisiest steps, as the paper does
    inverted = edit_friendly_invert(rough, x0, s, generator=torch.Generator().manual_seed(0))
    xs, corr = inverted.trajectory, inverted.clues["ddpm.corrections"]
    assert xs.shape == (len(s), 1, 4, 8, 8) and corr.shape == (len(s) - 1, 1, 4, 8, 8)
    assert torch.equal(xs[-1], x0)
    back = edit_friendly_sample(rough, xs[0], s, corr)
    assert float((back - x0).abs().max()) < 1e-10


def test_step_matches_the_hosts_ddpm_formula():
    # the host's k-diffusion DDPMSampler_step in the scaled space, without noise
    x = torch.randn(1, 4, 2, 2, dtype=torch.float64)
    sigma, nxt = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    eps = (x - rough(x, sigma)) / sigma
    ac, acp = 1 / (sigma ** 2 + 1), 1 / (nxt ** 2 + 1)
    alpha = ac / acp
    mu = (1 / alpha).sqrt() * (x / (1 + sigma ** 2).sqrt() - (1 - alpha) * eps / (1 - ac).sqrt())
    assert torch.allclose(ddpm_mean(rough, x, sigma, nxt), mu * (1 + nxt ** 2).sqrt())
