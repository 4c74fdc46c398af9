"""pix2pix-zero's cross-attention guidance (Parmar et al., "Zero-shot Image-to-Image
Translation", SIGGRAPH 2023, Sec. 3.3 and Algorithm 1).

The edited prompt alone changes the structure of the image. pix2pix-zero keeps it by asking
the edit's cross-attention maps to stay those of the reconstruction: at every step, the
reconstruction (source prompt, from the inverted latent) is drawn first and its cross-attention
maps ``M_ref`` are kept; then the edit's latent ``x_t`` takes one gradient step on

    sum over cross-attention layers of  mean over (branches x heads) of ||M_edit - M_ref||_F^2

(step size ``lambda_xa``, paper and diffusers: 0.1) before its prediction is made and the step
is taken from the moved latent.

With classifier-free guidance, the authors' code (and diffusers' pipeline, which ports it)
moves one copy of the latent per branch: the unconditional prediction is made at the latent
moved by the gradient of the unconditional maps' distance (negative prompt in both runs), the
conditional one at the latent moved by the gradient of the edited prompt's maps' distance, and
the DDIM step continues from the unconditional branch's moved latent. The maps' mean runs
over both branches' heads, so each branch's gradient is divided by the number of branches.
This module does the same; ``branches`` is 1 without guidance (cfg 1).

The latent is the DDPM latent ``z = x / sqrt(1 + sigma^2)`` of the host's sampler state ``x``:
one gradient step on ``z`` is a step of ``lambda_xa * (1 + sigma^2)`` on ``x`` along the
gradient with respect to ``x``.
"""
from __future__ import annotations

import torch

from ...attention.policy import AttentionPolicy, PolicyInputError, Where
from ...inversion.solver import denoised_onto, euler_step
from . import ROW

#: The paper's and diffusers' guidance step size.
AMOUNT = ROW.settings["InvertEditCrossAttentionGuidance.guidance_amount"]


def map_distance(maps: torch.Tensor, reference: torch.Tensor, branches: int) -> torch.Tensor:
    """One layer's term of the guidance loss for one branch: ``maps`` and ``reference``
    ``[rows, heads, N, T]``; the squared Frobenius distance of each head's map summed over
    rows and heads, divided by ``heads * branches`` (the reference's mean over its
    ``branches x heads`` batch)."""
    if maps.shape != reference.shape:
        raise ValueError(f"map_distance: maps {tuple(maps.shape)} and reference {tuple(reference.shape)} differ")
    heads = maps.shape[1]
    return ((maps - reference.to(maps)) ** 2).sum((-2, -1)).sum() / (heads * branches)


def moved_latent(x: torch.Tensor, grad_x: torch.Tensor, sigma: torch.Tensor, amount: float) -> torch.Tensor:
    """The host latent ``x`` at ``sigma`` after one gradient step of size ``amount`` on its DDPM
    latent ``z = x / sqrt(1 + sigma^2)``, given the gradient with respect to ``x``:
    ``z' = z - amount * dL/dz`` is ``x' = x - amount * (1 + sigma^2) * dL/dx``."""
    return x - amount * (1 + sigma ** 2) * grad_x


def at_input(x: torch.Tensor, x_made: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """A prediction made at ``x_made`` (``denoised``) carried to the input ``x`` with the same
    predicted noise: ``x - (x_made - denoised)`` (the noise is ``(x - denoised) / sigma``)."""
    return x - (x_made - denoised)


def step_from(x: torch.Tensor, start: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor,
              sigma_next: torch.Tensor) -> torch.Tensor:
    """The prediction for which the host's DDIM/Euler step from ``x`` lands where the step from
    ``start`` with ``denoised`` lands (the step continues from the moved latent)."""
    return denoised_onto(x, sigma, sigma_next, euler_step(start, denoised, sigma, sigma_next))


class MapState:
    """One sampling run's cross-attention maps: the source row's maps of the current step
    (recorded in pass 1, dropped after pass 2) and the target's loss (pass 2)."""

    def __init__(self):
        self.mode = "plain"
        self.reference: dict = {}
        self.loss: torch.Tensor | None = None
        self.branches = 1

    def begin(self, mode: str, branches: int = 1) -> None:
        self.mode, self.branches = mode, branches
        if mode == "record":
            self.reference = {}
        elif mode == "guide":
            self.loss = None

    def add(self, layer: tuple, branch: int, maps: torch.Tensor) -> None:
        if self.mode == "record":
            self.reference[(layer, branch)] = maps.detach()
        elif self.mode == "guide":
            reference = self.reference.get((layer, branch))
            if reference is None:
                raise PolicyInputError(f"the target's cross-attention call at {layer} (branch {branch}) has no "
                                       f"source map of this step; the MODEL's patches make the two rows' UNet "
                                       f"calls differ. Remove the node that adds them.")
            term = map_distance(maps, reference, self.branches)
            self.loss = term if self.loss is None else self.loss + term

    def end(self) -> None:
        self.mode, self.reference = "plain", {}


class GuidanceMaps(AttentionPolicy[MapState]):
    """On cross-attention: plain attention; while a pass of the guider records or guides, each
    branch's maps (the batch's chunks) also go to the run's ``MapState``."""

    pair = False

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> MapState:
        return MapState()

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: MapState) -> torch.Tensor:
        out = where.attend(q, k, v)
        if state.mode == "plain":
            return out
        for i, branch in enumerate(where.chunks):
            s = slice(i * where.rows, (i + 1) * where.rows)
            state.add((where.block, where.depth), branch, where.maps(q[s], k[s]))
        return out
