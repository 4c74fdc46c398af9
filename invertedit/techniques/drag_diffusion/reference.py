"""DragDiffusion's final denoising (the authors' ``utils/attn_utils.py``: ``MutualSelfAttentionControl`` as
``run_drag`` registers it, start_step 0, start_layer 10): the original latent and the dragged one are
denoised together, and from the start layer on, the dragged row's self-attention queries read the original
row's keys and values (the original row attends to itself), at every step from the start step. The code
counts layers as the UNet's 16 transformer blocks in execution order (``cur_att_layer // 2``, its self- and
cross-attention calls alternating), which is the order of ``hostkit/layout.self_attention_layers``; the
unconditional and conditional pairs alike where the run has guidance (the code's ``guidance_scale > 1``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...attention.policy import AttentionPolicy, Where, rows_from_source


@dataclass(frozen=True)
class ReferenceSchedule:
    start_step: int = 0
    start_layer: int = 10

    def active(self, step: int, layer: int) -> bool:
        return step >= self.start_step and layer >= self.start_layer


class ReferenceSelfAttention(AttentionPolicy[None]):
    """On self-attention of the (original, dragged) pair: the dragged row's queries on the original row's
    keys and values once the step and layer are past the schedule's start. ``layers``: each
    (block, number, depth) -> its index in execution order."""

    def __init__(self, schedule: ReferenceSchedule, layers: dict[tuple[str, int, int], int]):
        self.schedule, self.layers = schedule, layers

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: None) -> torch.Tensor:
        if self.layers[where.layer] < self.schedule.start_layer or (
                self.schedule.start_step > 0 and where.step < self.schedule.start_step):
            return where.attend(q, k, v)
        return where.attend(q, *rows_from_source(where, k, v, kinds=(0, 1)))
