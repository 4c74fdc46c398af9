"""Proximal guidance (Han et al., "ProxEdit: Improving Tuning-Free Real Image Editing with Proximal
Guidance", WACV 2024; reference code github.com/phymhan/prompt-to-prompt, ``ptp_utils.diffusion_step``
for ProxNPI, ``masactrl/diffuser_utils.py`` for ProxMasaCtrl).

On top of Negative-Prompt Inversion (the source prompt is the negative, so the source row's
guidance term is zero) the guidance term ``delta = eps_cond - eps_uncond`` of every row is
passed through a proximal operator before classifier-free guidance: where ``|delta|`` is below
a threshold the row follows the source prediction, elsewhere the edit acts, shrunk. The
threshold is the ``quantile`` of ``|delta|`` over the rows in scope (all of the pair's rows in
ProxNPI's code, whose source row contributes zeros; the target rows only in ProxMasaCtrl's), or,
for a negative ``quantile``, the fixed value ``-quantile`` (the code's convention).

The operators are the code's, under the code's names:

- ``"l0"``: ``delta - clamp(delta, -thr, thr)``, i.e. soft shrinkage by ``thr`` (zero inside).
- ``"l1"``: the ``"l0"`` result ``s`` shrunk once more the code's way: positive ``s`` becomes
  ``s - thr`` when ``s >= thr`` and stays ``s`` below; negative ``s`` becomes ``s + thr`` (so a
  value between ``-2 thr`` and ``-thr`` changes sign). This is what the code computes
  element by element, kept as it is.

In a window of timesteps (``recon_t``: below it, or above ``-recon_t`` when negative) the code
also computes where the edit acts, ``|prox(delta)| > thr`` dilated by a ``(2r+1)^2`` max-pool,
and pulls the rest towards the source: ``recon_lr`` of the way from the predicted clean latent to
the source latent (its "reconstruction guidance", inside the scheduler step), and ``recon_lr`` of
the way from the next latent to the inversion trajectory's (its "inversion guidance", after the
step; the README's ProxNPI recipe: ``recon_lr`` 1, ``recon_t`` 400).

All tensors are sampler-space latents ``x = x0 + sigma * eps`` (the DDIM step is then
``x' = x0 + sigma' * eps``; the code's DDPM-scaled latents differ by a per-step factor that
every formula here is linear in).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ...guidance.on_inversion import InversionPolicy
from ...guidance.policy import Where
from ...inversion.record import Inversion
from ...inversion.solver import denoised_onto

PROXES = ("l0", "l1")                                  # the reference code's `prox` values
SCOPES = ("pair", "target")                            # rows the quantile is taken over
RECONSTRUCTIONS = ("inversion", "reconstruction", "both", "none")   # the pull towards the source


@dataclass(frozen=True)
class ProxSettings:
    """Proximal guidance settings; defaults are the reference README's ProxNPI recipe (the code's
    ``main`` defaults differ: no pull, ``recon_lr`` 0.1)."""
    prox: str = "l0"
    quantile: float = 0.7
    scope: str = "pair"
    start_step: int = 0           # ProxMasaCtrl's prox_step: plain guidance before this step
    pull: str = "inversion"       # one of RECONSTRUCTIONS
    recon_lr: float = 1.0
    recon_t: float = 400.0        # timestep (0-1000) below which the pull acts; negative: above -recon_t
    dilate: int = 1               # radius of the edit mask's dilation

    def __post_init__(self) -> None:
        for name, value, options in (("prox", self.prox, PROXES), ("scope", self.scope, SCOPES),
                                     ("pull", self.pull, RECONSTRUCTIONS)):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, not {value!r}")


def prox_threshold(delta: torch.Tensor, quantile: float) -> torch.Tensor:
    """The threshold of ``delta`` (the rows in scope): the ``quantile`` of ``|delta|`` over all its
    elements, or ``-quantile`` itself when ``quantile <= 0`` (the reference's fixed threshold).
    A 0-dim tensor in ``delta``'s dtype."""
    if quantile > 0:
        return torch.quantile(delta.abs().flatten().float(), quantile).to(delta.dtype)
    return torch.tensor(-quantile, dtype=delta.dtype, device=delta.device)


def shrink(delta: torch.Tensor, threshold: torch.Tensor, prox: str) -> torch.Tensor:
    """The proximal operator ``prox`` ("l0" or "l1", as the reference code computes them) applied
    to ``delta`` element by element with the scalar ``threshold``."""
    if prox not in PROXES:
        raise ValueError(f"prox must be one of {PROXES}, not {prox!r}")
    soft = delta - torch.clamp(delta, -threshold, threshold)
    if prox == "l0":
        return soft
    positive = torch.where(soft >= threshold, soft - threshold, soft)
    return torch.where(soft > 0, positive, torch.where(soft < 0, soft + threshold, soft))


def edit_mask(shrunk: torch.Tensor, threshold: torch.Tensor, dilate: int) -> torch.Tensor:
    """1 where the edit acts (``|shrunk| > threshold``), dilated per channel by a ``2*dilate+1``
    square max-pool; ``[B, C, H, W]`` in {0, 1}."""
    mask = (shrunk.abs() > threshold).to(shrunk.dtype)
    if dilate > 0:
        mask = F.max_pool2d(mask, kernel_size=2 * dilate + 1, stride=1, padding=dilate)
    return mask


def in_window(timestep: float, recon_t: float) -> bool:
    """Whether the pull towards the source acts at ``timestep`` (0-1000): below ``recon_t``, or
    above ``-recon_t`` when it is negative (the reference's convention; 0: never)."""
    return (recon_t > 0 and timestep < recon_t) or (recon_t < 0 and timestep > -recon_t)


def proximal_eps(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, cfg: float, settings: ProxSettings,
                 in_scope: torch.Tensor, step: int, timestep: float) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(the guided noise prediction, the mask of where the source is kept or None).

    ``eps_*`` are ``[B, C, H, W]``; ``in_scope`` a ``[B]`` bool tensor of the rows whose guidance
    is proximal (the others get plain guidance and are kept whole where the pull acts). The mask,
    ``1 - edit_mask``, is returned only in the pull's window with a pull chosen."""
    delta = eps_cond - eps_uncond
    if step < settings.start_step or not bool(in_scope.any()):  # sampling-path-ok: the guider's per-row flags, on the CPU
        return eps_uncond + cfg * delta, None
    threshold = prox_threshold(delta[in_scope], settings.quantile)
    scope = in_scope.reshape(-1, *([1] * (delta.ndim - 1))).to(delta.device)
    shrunk = torch.where(scope, shrink(delta, threshold, settings.prox), delta)
    guided = eps_uncond + cfg * shrunk
    if settings.pull == "none" or not in_window(timestep, settings.recon_t):
        return guided, None
    edited = edit_mask(shrunk, threshold, settings.dilate) * scope.to(delta.dtype)
    return guided, 1 - edited


def pulled_next(x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, eps: torch.Tensor,
                keep: torch.Tensor, settings: ProxSettings, source: torch.Tensor,
                trajectory_next: torch.Tensor) -> torch.Tensor:
    """The next latent of the DDIM/Euler step from ``x`` at ``sigma`` with ``eps``, pulled towards
    the source where ``keep`` is 1, in the reference's order: the predicted clean latent towards
    ``source`` (the source latent) inside the step ("reconstruction"; the step keeps ``eps``), then
    the stepped latent towards ``trajectory_next`` (the inversion's latent at ``sigma_next``;
    "inversion")."""
    lr = settings.recon_lr
    clean = x - sigma * eps
    if settings.pull in ("reconstruction", "both"):
        clean = clean - lr * (clean - source) * keep
    nxt = clean + sigma_next * eps
    if settings.pull in ("inversion", "both"):
        nxt = nxt - lr * (nxt - trajectory_next) * keep
    return nxt


class ProximalPolicy(InversionPolicy):
    """ProxEdit's proximal guidance on an inversion: CFG with the guidance term through the
    proximal operator; in the pull's window the step lands where the reference's pulls put it
    (the host's ddim/euler step is handed the prediction that lands there)."""

    name = "Proximal Guidance"
    exact_else = " (or set pull to 'none')"

    def __init__(self, inversion: Inversion, cfg: float, settings: ProxSettings):
        super().__init__(inversion, cfg)
        self.settings = settings

    @property
    def exact_step(self) -> bool:
        return self.settings.pull != "none"

    def check_run(self, steps: int) -> None:
        if self.settings.start_step >= steps:
            raise ValueError(f"input 'start_step' is {self.settings.start_step}, but the run has {steps} steps, so "
                             f"proximal guidance would never act; give a start_step below {steps} (paper: 0).")

    def denoised(self, x: torch.Tensor, eps: list[torch.Tensor], where: Where, state) -> torch.Tensor:
        sigma = where.sigma.reshape(-1)[0]
        in_scope = torch.ones(x.shape[0], dtype=torch.bool)  # sampling-path-ok: per-row flags, kept on the CPU
        if self.settings.scope == "target":
            in_scope[:self.source_rows(x.shape[0])] = False
        guided, keep = proximal_eps(eps[self.uncond_index], eps[self.cond_index], self.cfg, self.settings, in_scope,
                                    where.step, where.timestep)
        if keep is None:
            return x - guided * sigma
        sigma_next = where.next_sigma(x)
        nxt = pulled_next(x, sigma, sigma_next, guided, keep, self.settings, self.trajectory_at(0.0, x.shape[0], x),
                          self.trajectory_at(where.sigma_values[where.step + 1], x.shape[0], x))
        return denoised_onto(x, sigma, sigma_next, nxt)

    def finish(self, out: torch.Tensor) -> None:
        rows = self.source_rows(out.shape[0])
        if out.shape[0] == 2 * rows and torch.equal(out[rows:], out[:rows]):  # sampling-path-ok: once, after the run
            logging.warning("%s: the target came out identical to the source: the threshold (quantile %g) removed the "
                            "whole edit. Use a quantile from 0 to 1 (paper: 0.7), or a smaller fixed threshold.",
                            self.name, self.settings.quantile)
