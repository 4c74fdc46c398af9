"""Noise Map Guidance's step (``techniques/noise_map/guidance.py``) on a denoiser whose gradient is known in
closed form: the guided prediction, the code's scale of the loss, and the latent text guidance
starts from."""
import pytest
import torch

from invertedit.techniques.noise_map.guidance import noise_map_eps, noise_map_step, trajectory_loss


def setting(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, target = torch.randn(1, 4, 4, 4, generator=g) * 3.0, torch.randn(1, 4, 4, 4, generator=g)
    return x, target, torch.tensor(3.0), torch.tensor(1.5)


A = 0.3
denoise = lambda x: A * x   # noqa: E731  (a linear denoiser: d(x) = A x)


def test_l2_gradient_in_closed_form():
    x, target, sigma, sigma_next = setting()
    # the DDIM step lands at k x, k = A + (1 - A) s'/s; the code's loss on z = x / sqrt(1 + s'^2):
    # mean((k x - T)^2) / c^2, whose gradient is 2 k (k x - T) / (c^2 n)
    k, c2, n = A + (1 - A) * sigma_next / sigma, 1 + sigma_next ** 2, x.numel()
    grad = 2 * k * (k * x - target) / (c2 * n)
    eps_u = (x - A * x) / sigma
    got = noise_map_eps(denoise, x, sigma, sigma_next, target, 10.0, 50.0, "l2")
    assert torch.allclose(got, eps_u + 10.0 * 50.0 * sigma * grad, rtol=1e-5, atol=1e-6)


def test_l1_gradient_is_a_sign_and_zero_scale_is_the_unconditional_prediction():
    x, target, sigma, sigma_next = setting(1)
    k, c, n = A + (1 - A) * sigma_next / sigma, (1 + sigma_next ** 2) ** 0.5, x.numel()
    grad = k * torch.sign(k * x - target) / (c * n)
    eps_u = (x - A * x) / sigma
    assert torch.allclose(noise_map_eps(denoise, x, sigma, sigma_next, target, 2.0, 7.0, "l1"),
                          eps_u + 14.0 * sigma * grad, atol=1e-6)
    assert torch.allclose(noise_map_eps(denoise, x, sigma, sigma_next, target, 0.0, 5000.0, "l1"), eps_u)


def test_step_lands_closer_to_the_noise_map_and_is_rescaled_to_the_current_level():
    x, target, sigma, sigma_next = setting(2)
    moved = noise_map_step(denoise, x, sigma, sigma_next, target, 1.0, 5.0, "l2")
    rescale = ((1 + sigma ** 2) / (1 + sigma_next ** 2)) ** 0.5
    plain = (A * x + (x - A * x) * sigma_next / sigma)        # the unguided DDIM step
    assert torch.allclose(noise_map_step(denoise, x, sigma, sigma_next, target, 0.0, 5.0, "l2"), plain * rescale)
    assert (moved / rescale - target).norm() < (plain - target).norm()


def test_gradients_are_taken_whatever_the_grad_mode_and_bad_loss_is_refused():
    x, target, sigma, sigma_next = setting(3)
    with torch.no_grad():
        a = noise_map_eps(denoise, x, sigma, sigma_next, target, 1.0, 1.0, "smooth_l1")
    assert not torch.allclose(a, (x - A * x) / sigma)
    with pytest.raises(ValueError, match="loss must be one of"):
        trajectory_loss(x, target, "l3")
