"""Toy world 2's autoencoder: small, normalisation-free, all its work at latent resolution.

Same contract as ``toyworld.ae.ToyAutoencoder`` (why no normalisation: see there): ``encode``
takes images in -1..1 ``[B, 3, H, W]`` and returns latents ``[B, C, H/f, W/f]`` that the host's
latent format makes mean 0, std 1 per channel over the world's images (a stored per-channel
affine): ``latent * 0.18215`` for world 2 (C = 4, as SD1.x), ``(latent - 0.1159) * 0.3611`` for
the flow world (C = 16, as Flux's VAE); ``decode`` inverts it. ``f`` is the downscale factor (8 like
SD1.x and Flux, or 4).

Layout: an ``f x f`` space-to-depth, a per-patch MLP (1x1 convolutions) and one 3x3 residual
block at latent resolution down to 4 channels; back up with 3x3 residual blocks at latent
resolution and a per-patch MLP to the ``f x f x 3`` pixels (depth-to-space). Flat colours
and sharp edges are all the world has, so nothing runs at pixel resolution: it is cheap
enough to encode training images on the fly, and fully convolutional, so it trains on crops.
"""
from __future__ import annotations

from torch import nn

from .toy_autoencoder import LATENT_CHANNELS, SD1_SCALE, LatentAffine, _Res  # noqa: F401  (SD1_SCALE re-exported)


class SceneAutoencoder(LatentAffine):
    def __init__(self, factor: int = 8, ch: int = 64, hidden: int = 128, dec_blocks: int = 2,
                 latent_channels: int = LATENT_CHANNELS, latent_format: str = "sd1"):
        super().__init__()
        self.factor = factor
        patch = 3 * factor * factor
        self.enc = nn.Sequential(
            nn.PixelUnshuffle(factor),
            nn.Conv2d(patch, ch, 1), nn.SiLU(),
            nn.Conv2d(ch, ch, 1),
            _Res(ch), nn.SiLU(),
            nn.Conv2d(ch, latent_channels, 3, padding=1),
        )
        self.dec = nn.Sequential(
            nn.Conv2d(latent_channels, ch, 3, padding=1),
            *[_Res(ch) for _ in range(dec_blocks)], nn.SiLU(),
            nn.Conv2d(ch, hidden, 1), nn.SiLU(),
            nn.Conv2d(hidden, patch, 1),
            nn.PixelShuffle(factor),
        )
        self.add_latent_affine(latent_channels, latent_format)
