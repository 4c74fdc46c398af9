"""Plug-and-Play (Tumanyan et al., "Plug-and-Play Diffusion Features for Text-Driven
Image-to-Image Translation", 2023): the target branch is generated with the source's spatial
features plugged in: the residual features of the decoder's fourth block for the first 80% of
the steps, and the self-attention maps (queries and keys) of the decoder's layers from that
block on for the first 50%. The source is inverted with an empty prompt (paper).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PlugAndPlaySchedule:
    features: float = 0.8       # fraction of the steps with feature injection
    self_attention: float = 0.5  # fraction of the steps with self-attention injection

    def injects_features(self, step: int, steps: int) -> bool:
        return step < int(self.features * steps)   # the reference: timesteps[:int(N * fraction)]


def inject_features(h: torch.Tensor, chunks: int) -> torch.Tensor:
    """In every (source, target) row pair of ``h`` (``chunks`` pairs), the target row takes the
    source row's features."""
    out = h.clone()
    for c in range(chunks):
        out[2 * c + 1] = h[2 * c]
    return out


def decoder_injection_block(blocks_per_level: int) -> int:
    """The output-block index of the paper's "fourth decoder block" for a UNet with this many
    output blocks per resolution level: the second block of the second level (SD1.5: 4)."""
    return blocks_per_level + 1
