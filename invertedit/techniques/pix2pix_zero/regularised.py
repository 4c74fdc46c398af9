"""pix2pix-zero's regularised DDIM inversion (Parmar et al., "Zero-shot Image-to-Image
Translation", SIGGRAPH 2023, Sec. 3.1 and the supplement's inversion details).

Plain DDIM inversion follows the noise the model predicts for the image; that noise is not
Gaussian (it keeps the image's structure), and an edit sampled from such a latent is hard to
steer. pix2pix-zero therefore pulls the predicted noise towards white Gaussian noise at every
inversion step, before the step is taken, with a few gradient steps on two losses:

- a pairwise (auto-correlation) loss over a pyramid: for each image and channel, the squared
  mean of the noise times the noise rolled by a random shift, along the height and along the
  width, at the full resolution and at every 2x average-pooled level until the side is at
  most 8 (the paper's {eta^0, eta^1, ...} down to 8 x 8);
- a KL loss to the standard normal of the whole tensor's mean and (unbiased) variance:
  ``var + mean^2 - 1 - log(var + 1e-7)``.

Each of ``steps`` rounds (paper and diffusers' default: 5) takes ``rolls`` (5) descent steps on
the auto-correlation loss, each of size ``lambda_ac / rolls`` (lambda 20) and each with freshly
drawn shifts, then one step of size ``lambda_kl`` (20) on the KL loss. As in the authors' code
and diffusers' ``StableDiffusionPix2PixZeroPipeline.invert``, a shift is drawn uniformly from
``0 .. h // 2 - 1`` with ``h`` the level's height, one per image, channel and level, in that
order, and used along both axes (a shift of 0 makes that term the squared second moment).
Where the reference would fail (a level less than 2 high or wide), the shift is drawn from
``{0}`` and the pyramid stops.

The descent is the reference's, with fixed step sizes: on a small latent (an 8 x 8 level has only
64 values per channel, so each value weighs more in the means) a predicted noise of more than
about unit spread makes the auto-correlation steps overshoot and diverge (at the paper's
64 x 64 latent it does not). ``regularised_invert`` raises ``RegulariserDiverged`` there rather
than return NaN.

Zero weights leave the predicted noise unchanged: the inversion is then exactly DDIM's
(``inversion/ddim.py``, whose conventions it shares: host sigma space, the current latent
evaluated at the next timestep).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ...inversion.contract import Inverted
from ...inversion.ddim import Denoiser, StepCallback, eps_at, invert_along
from ...inversion.parameterisation import EPS, Parameterisation
from ...inversion.solver import eps_step
from . import ROW

#: The paper's and diffusers' defaults.
LAMBDA_AUTO_CORR = ROW.settings["InvertEditPix2PixZeroInvert.lambda_auto_corr"]
LAMBDA_KL = ROW.settings["InvertEditPix2PixZeroInvert.lambda_kl"]
REG_STEPS = ROW.settings["InvertEditPix2PixZeroInvert.reg_steps"]
AUTO_CORR_ROLLS = 5


class RegulariserDiverged(ValueError):
    """The regularised noise became NaN or infinite while the model's prediction was finite."""

    def __init__(self, step: int, steps: int, shape: tuple, spread: float):
        self.step, self.steps, self.shape, self.spread = step, steps, shape, spread
        super().__init__(f"the noise regulariser diverged at inversion step {step + 1} of {steps} (latent "
                         f"{shape[-2]}x{shape[-1]}, predicted noise spread {spread:.3g})")


def auto_correlation_loss(noise: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The pyramid auto-correlation loss of ``noise`` ``[B, C, H, W]`` (module docstring): one
    random shift per image, channel and pyramid level, drawn from ``generator``."""
    total = noise.new_zeros(())
    for i in range(noise.shape[0]):
        for c in range(noise.shape[1]):
            level = noise[i:i + 1, c:c + 1]
            while True:
                shift = int(torch.randint(max(level.shape[2] // 2, 1), (1,), generator=generator))  # sampling-path-ok: the reference's rolls, seeded on the CPU
                total = total + (level * torch.roll(level, shifts=shift, dims=2)).mean() ** 2
                total = total + (level * torch.roll(level, shifts=shift, dims=3)).mean() ** 2
                if level.shape[2] <= 8 or min(level.shape[2], level.shape[3]) < 2:
                    break
                level = F.avg_pool2d(level, kernel_size=2)
    return total


def kl_loss(noise: torch.Tensor) -> torch.Tensor:
    """KL divergence (up to a factor) of N(mean, var) of all of ``noise`` to N(0, 1), with the
    reference's unbiased variance and 1e-7 inside the logarithm."""
    mean, var = noise.mean(), noise.var()
    return var + mean ** 2 - 1 - torch.log(var + 1e-7)


def _descend(loss_of, noise: torch.Tensor) -> torch.Tensor:
    var = noise.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_of(var), var)
    return grad.detach()


def regularise_noise(eps: torch.Tensor, lambda_ac: float = LAMBDA_AUTO_CORR, lambda_kl: float = LAMBDA_KL,
                     steps: int = REG_STEPS, rolls: int = AUTO_CORR_ROLLS,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The predicted noise ``eps`` after ``steps`` rounds of gradient descent towards white
    Gaussian noise (module docstring). Works under any autograd mode (the host samples under
    inference mode): the gradients are taken on a float32 copy; the result has ``eps``'s dtype."""
    with torch.inference_mode(False), torch.enable_grad():
        e = eps.detach().float().clone()
        for _ in range(steps):
            if lambda_ac > 0:
                for _ in range(rolls):
                    grad = _descend(lambda v: auto_correlation_loss(v, generator), e)
                    e = e - lambda_ac * (grad / rolls)
            if lambda_kl > 0:
                e = e - lambda_kl * _descend(kl_loss, e)
            e = e.detach()
    return e.to(eps.dtype)


def regularised_invert(
    denoise: Denoiser,
    x0: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Optional[StepCallback] = None,
    lambda_ac: float = LAMBDA_AUTO_CORR,
    lambda_kl: float = LAMBDA_KL,
    reg_steps: int = REG_STEPS,
    rolls: int = AUTO_CORR_ROLLS,
    generator: Optional[torch.Generator] = None,
    parameterisation: Parameterisation = EPS,
) -> Inverted:
    """DDIM inversion of ``x0`` along a descending schedule with the predicted noise of every
    step regularised (``regularise_noise``) before the step is taken; ``parameterisation`` as in
    ``ddim_invert``. The contract of
    ``inversion/contract.py``: the trajectory in sampling order, ``[0]`` the inverted latent;
    no clues (the inversion is replayed by plain DDIM sampling, as the paper does)."""
    def step(i, total, x, sigma, sigma_next):
        eps = eps_at(denoise, parameterisation.at_level(x, sigma, sigma_next), sigma_next)
        regular = regularise_noise(eps, lambda_ac, lambda_kl, reg_steps, rolls, generator)
        if not bool(torch.isfinite(regular).all()) and bool(torch.isfinite(eps).all()):  # sampling-path-ok: a clear error, not NaN; once per step
            raise RegulariserDiverged(i, total, tuple(x.shape), float(eps.float().std()))
        return eps_step(x, regular, sigma, sigma_next)

    return invert_along(step, x0, sigmas, callback, "regularised_invert")
