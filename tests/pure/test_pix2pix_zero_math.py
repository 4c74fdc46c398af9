"""pix2pix-zero's math without the host: the regularised inversion, the cross-attention guidance's
loss, latent step and relocation, and the edit direction."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from invertedit.techniques.pix2pix_zero.cross_guidance import at_input, map_distance, moved_latent, step_from
from invertedit.techniques.pix2pix_zero.edit_direction import edit_direction, sentences
from invertedit.inversion.ddim import ddim_invert
from invertedit.inversion.solver import euler_step
from invertedit.techniques.pix2pix_zero.regularised import (RegulariserDiverged, auto_correlation_loss, kl_loss, regularise_noise,
                                               regularised_invert)


def toy_denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A smooth, nonlinear stand-in for a model: the clean estimate of ``x`` at ``sigma``."""
    s = sigma.reshape(-1, 1, 1, 1)
    smooth = F.avg_pool2d(x, 3, stride=1, padding=1)
    return torch.tanh(smooth / (1 + s)) * 2 + 0.1 * x / (1 + s ** 2)


def smooth_noise(shape, seed=0) -> torch.Tensor:
    """Spatially correlated noise (what a predicted noise that keeps the image's structure looks like)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(shape, generator=g)
    return F.avg_pool2d(n, 5, stride=1, padding=2) * 3 + 0.5


SIGMAS = torch.tensor([14.6, 6.0, 2.5, 1.0, 0.3, 0.0])


def test_zero_weights_give_plain_ddim_inversion_exactly():
    x0 = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    plain = ddim_invert(toy_denoise, x0, SIGMAS)
    zero = regularised_invert(toy_denoise, x0, SIGMAS, lambda_ac=0.0, lambda_kl=0.0)
    assert torch.equal(zero.trajectory, plain.trajectory) and zero.clues == {}
    # and the default weights do change it
    regular = regularised_invert(toy_denoise, x0, SIGMAS, generator=torch.Generator().manual_seed(0))
    assert torch.equal(regular.trajectory[-1], x0)
    assert not torch.allclose(regular.latent, plain.latent, atol=1e-3)


def test_regularisation_pulls_the_noise_towards_white_gaussian_noise():
    eps = smooth_noise((1, 4, 32, 32))
    out = regularise_noise(eps, generator=torch.Generator().manual_seed(0))
    same = torch.Generator().manual_seed(5)
    before = auto_correlation_loss(eps, torch.Generator().manual_seed(5))
    after = auto_correlation_loss(out, same)
    assert float(after) < 0.5 * float(before)
    assert float(kl_loss(out)) < float(kl_loss(eps))   # its gradient scales as 1/numel: small steps
    # one weight at a time acts on its own loss
    only_kl = regularise_noise(eps, lambda_ac=0.0, generator=torch.Generator().manual_seed(0))
    assert abs(float(only_kl.mean())) < abs(float(eps.mean())) and float(kl_loss(only_kl)) < float(kl_loss(eps))


def test_shifts_are_drawn_per_image_channel_and_level_from_the_level_height():
    """The reference's order: per image, per channel, per pyramid level (down to 8), one draw from
    ``h // 2`` of that level's height; this is what makes a seed reproduce diffusers' rolls."""
    noise = torch.randn(2, 3, 32, 32)
    g = torch.Generator().manual_seed(11)
    auto_correlation_loss(noise, g)
    expected = torch.Generator().manual_seed(11)
    for _ in range(2 * 3):
        for h in (32, 16, 8):
            torch.randint(h // 2, (1,), generator=expected)
    assert torch.equal(g.get_state(), expected.get_state())


def test_auto_correlation_loss_of_one_level_by_hand():
    noise = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    shift = int(torch.randint(4, (1,), generator=torch.Generator().manual_seed(3)))
    want = ((noise * noise.roll(shift, 2)).mean() ** 2 + (noise * noise.roll(shift, 3)).mean() ** 2)
    assert torch.allclose(auto_correlation_loss(noise, torch.Generator().manual_seed(3)), want)


def test_kl_loss_is_zero_for_the_standard_normal_moments():
    x = torch.randn(4, 64, 64, generator=torch.Generator().manual_seed(0))
    x = (x - x.mean()) / x.std()
    assert abs(float(kl_loss(x))) < 1e-5
    assert float(kl_loss(x * 2 + 1)) > 1.0


def test_divergence_on_a_small_latent_is_an_error_not_nan():
    """The reference's fixed steps overshoot on an 8x8 latent whose noise spreads by more than ~2."""
    def loud(x, sigma):
        return x - sigma.reshape(-1, 1, 1, 1) * 5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))

    with pytest.raises(RegulariserDiverged, match="diverged at inversion step 1 of 5 \\(latent 8x8"):
        regularised_invert(loud, torch.zeros(1, 4, 8, 8), SIGMAS, generator=torch.Generator().manual_seed(0))
    out = regularised_invert(loud, torch.zeros(1, 4, 32, 32), SIGMAS, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.trajectory).all()


def test_regulariser_works_under_inference_mode():
    eps = smooth_noise((1, 4, 16, 16))
    with torch.inference_mode():
        out = regularise_noise(eps, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, regularise_noise(eps, generator=torch.Generator().manual_seed(0)))


def test_map_distance_is_the_mean_over_branches_and_heads():
    maps = torch.rand(1, 4, 16, 7)
    ref = torch.rand(1, 4, 16, 7)
    by_head = ((maps - ref) ** 2).sum((-2, -1))[0]
    assert torch.allclose(map_distance(maps, ref, 2), by_head.sum() / 8)
    assert torch.allclose(map_distance(maps, ref, 1), by_head.mean())
    assert float(map_distance(ref, ref, 2)) == 0.0
    with pytest.raises(ValueError):
        map_distance(maps, ref[..., :5], 1)


def test_moved_latent_is_one_sgd_step_on_the_ddpm_latent():
    sigma = torch.tensor(3.0)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4)) * 3
    target = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))

    def loss_of_z(z):
        return ((torch.sin(z) - target) ** 2).sum()

    z = (x / (1 + sigma ** 2).sqrt()).clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=0.1)
    loss_of_z(z).backward()
    opt.step()
    xg = x.clone().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(loss_of_z(xg / (1 + sigma ** 2).sqrt()), xg)
    moved = moved_latent(x, grad_x, sigma, 0.1)
    assert torch.allclose(moved / (1 + sigma ** 2).sqrt(), z.detach(), atol=1e-6)
    assert torch.equal(moved_latent(x, grad_x, sigma, 0.0), x)


def test_the_step_continues_from_the_moved_latent():
    sigma, sigma_next = torch.tensor(5.0), torch.tensor(2.0)
    x = torch.randn(1, 4, 8, 8) * 5
    start = x + 0.3 * torch.randn(1, 4, 8, 8)
    d = torch.randn(1, 4, 8, 8)
    relocated = step_from(x, start, d, sigma, sigma_next)
    assert torch.allclose(euler_step(x, relocated, sigma, sigma_next), euler_step(start, d, sigma, sigma_next), atol=1e-5)
    assert torch.allclose(step_from(x, torch.zeros_like(x), d, sigma, torch.tensor(0.0)), d)  # the last step lands on d
    # a prediction made at another latent keeps its noise
    made = start + 0.1
    carried = at_input(start, made, d)
    assert torch.allclose((start - carried) / sigma, (made - d) / sigma, atol=1e-6)


def test_edit_direction_is_the_difference_of_means_and_zero_for_the_same_sentences():
    a = torch.randn(3, 77, 8)
    b = torch.randn(5, 77, 8)
    assert torch.allclose(edit_direction(a, b), (b.mean(0) - a.mean(0))[None])
    assert torch.count_nonzero(edit_direction(a, a)) == 0
    with pytest.raises(ValueError):
        edit_direction(a, b[:, :10])
    assert sentences(" a cat \n\n a photo of a cat\n  ") == ["a cat", "a photo of a cat"]
