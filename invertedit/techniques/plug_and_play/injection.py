"""Plug-and-Play (Tumanyan et al., "Plug-and-Play Diffusion Features for Text-Driven
Image-to-Image Translation", 2023): the target branch is generated with the source's spatial
features plugged in: the residual features of the decoder's fourth block for the first 80% of
the steps, and the self-attention maps (queries and keys) of the decoder's layers from that
block on for the first 50%. The source is inverted with an empty prompt (paper).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...attention.policy import AttentionPolicy, Where, rows_from_source
from ...attention.prompt_to_prompt import least_fraction


@dataclass(frozen=True)
class PlugAndPlaySchedule:
    features: float         # fraction of the steps with feature injection (paper: the row's feature_injection)
    self_attention: float   # fraction of the steps with self-attention injection (self_attention_injection)

    def injects_features(self, step: int, steps: int) -> bool:
        return step < int(self.features * steps)   # the reference: timesteps[:int(N * fraction)]

    def injects_self_attention(self, step: int, steps: int) -> bool:
        return step < int(self.self_attention * steps)   # as for the features

    def idle_reason(self, steps: int, paper: str) -> str | None:
        """Why a run of ``steps`` steps would never inject (neither fraction gives a step), or None;
        ``paper`` says the paper's fractions."""
        if int(self.features * steps) or int(self.self_attention * steps):
            return None
        return (f"inputs 'feature_injection' ({self.features:g}) and 'self_attention_injection' ({self.self_attention:g}) "
                f"inject in none of the run's {steps} steps (each in the first int(f * N) = 0), so Plug-and-Play would "
                f"never act; give one of them {least_fraction(lambda f: int(f * steps)):g} or more ({paper}), or "
                f"sample more steps.")


def inject_features(h: torch.Tensor, chunks: int) -> torch.Tensor:
    """In every (source, target) row pair of ``h`` (``chunks`` pairs), the target row takes the
    source row's features; in a clip's pair of 2F rows in blocks, target row F + f takes source row f."""
    out = h.clone()
    rows = h.shape[0] // chunks
    frames = rows // 2
    for c in range(chunks):
        s = c * rows
        out[s + frames:s + rows] = h[s:s + frames]
    return out


def decoder_injection_block(blocks_per_level: int) -> int:
    """The output-block index of the paper's "fourth decoder block" for a UNet with this many
    output blocks per resolution level: the second block of the second level (SD1.5: 4)."""
    return blocks_per_level + 1


class SelfAttentionInjection(AttentionPolicy[None]):
    """On the decoder's self-attention layers the policy is installed on: for the scheduled
    steps, the conditional target row attends with the source's queries and keys (the source's
    maps) on its own values, in the one call of every row."""

    def __init__(self, schedule: PlugAndPlaySchedule):
        self.schedule = schedule

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: None) -> torch.Tensor:
        if self.schedule.injects_self_attention(where.step, where.steps):
            q, k = rows_from_source(where, q, k)
        return where.attend(q, k, v)
