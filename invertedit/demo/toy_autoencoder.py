"""The toy model's autoencoder: small, normalisation-free, 8x downscale, 4 latent channels.

Why not the host's ``AutoencoderKL``: at a CPU-affordable width its GroupNorm has one channel
per group, which removes each channel's mean, so flat colours cannot be represented. This one
has no normalisation: a 4x4 space-to-depth, convolutions at 32x32 and 16x16, and back.

``encode`` takes images in -1..1 ``[B, 3, H, W]`` (what ``comfy.sd.VAE`` passes after its
``process_input``) and returns latents ``[B, 4, H/8, W/8]`` "unscaled" like SD1.x VAE latents:
a stored per-channel affine (``shift``, ``scale``) makes ``latent * 0.18215`` have mean 0 and
std 1 per channel over the world's images. ``decode`` inverts both.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

SD1_SCALE = 0.18215
LATENT_CHANNELS = 4


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.b(F.silu(self.a(F.silu(x))))


# The host latent formats' (scale_factor, shift_factor) a toy autoencoder can be calibrated for:
# the model sees (latent - shift_factor) * scale_factor (``comfy.latent_formats``).
LATENT_FORMATS: dict[str, tuple[float, float]] = {"sd1": (SD1_SCALE, 0.0), "flux": (0.3611, 0.1159)}


class LatentAffine(nn.Module):
    """An autoencoder (``enc``, ``dec``) whose latents are stored through a per-channel affine,
    so that what the host's latent format hands the model, ``(latent - shift_factor) *
    scale_factor``, has mean 0 and std 1 per channel, as SD1.x's (``"sd1"``) or Flux's
    (``"flux"``) do (``calibrate``); the host's latent format then keeps its usual meaning."""

    def add_latent_affine(self, channels: int = LATENT_CHANNELS, latent_format: str = "sd1") -> None:
        # z_raw = shift + scale * ((latent - shift_factor) * scale_factor); identity until calibrated
        self.scale_factor, self.shift_factor = LATENT_FORMATS[latent_format]
        self.register_buffer("shift", torch.zeros(1, channels, 1, 1))
        self.register_buffer("scale", torch.ones(1, channels, 1, 1))

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)

    def to_model(self, latent: torch.Tensor) -> torch.Tensor:
        """What the host's latent format gives the model for ``latent`` (mean 0, std 1)."""
        return (latent - self.shift_factor) * self.scale_factor

    def from_model(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.scale_factor + self.shift_factor

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_model((self.encode_raw(x) - self.shift) / self.scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(self.to_model(z) * self.scale + self.shift)

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor) -> None:
        """Set ``shift``/``scale`` from raw latents of ``images`` (-1..1, ``[B, 3, H, W]``)."""
        z = self.encode_raw(images)
        self.shift.copy_(z.mean(dim=(0, 2, 3), keepdim=True))
        self.scale.copy_(z.std(dim=(0, 2, 3), keepdim=True))


class ToyAutoencoder(LatentAffine):
    def __init__(self, ch: int = 64, ch2: int = 96):
        super().__init__()
        self.enc = nn.Sequential(
            nn.PixelUnshuffle(4),                   # 3 x 128 -> 48 x 32
            nn.Conv2d(48, ch, 3, padding=1), _Res(ch),
            nn.Conv2d(ch, ch2, 4, stride=2, padding=1),  # -> 16
            _Res(ch2), nn.SiLU(),
            nn.Conv2d(ch2, LATENT_CHANNELS, 3, padding=1),
        )
        self.dec = nn.Sequential(
            nn.Conv2d(LATENT_CHANNELS, ch2, 3, padding=1), _Res(ch2),
            nn.Upsample(scale_factor=2, mode="nearest"),  # -> 32
            nn.Conv2d(ch2, ch, 3, padding=1), _Res(ch), nn.SiLU(),
            nn.Conv2d(ch, 48, 3, padding=1),
            nn.PixelShuffle(4),                     # -> 3 x 128
        )
        self.add_latent_affine()
