"""MasaCtrl inside the host (math in ``attention/mutual.py``): the UNet's self-attention layers
in execution order, and the mutual self-attention patch of a source/target pair."""
from __future__ import annotations

import torch
from comfy.ldm.modules.attention import SpatialTransformer
import torch.nn.functional as F
from ..attention.maps import token_grid
from ..attention.mutual import MutualSchedule
from ..attention.mutual import masked_mutual_target
from .attention_maps import host_attention
from .pair import PairRun, pair_rows, rows_from_source
from .steps import sampling_step


NAME = "MasaCtrl"

def self_attention_layers(model) -> dict[tuple[str, int, int], int]:
    """Each (block, number, depth) of the UNet's self-attention layers -> its index in execution
    order (input blocks, middle, output blocks): SD1.5 has 16, SDXL 70."""
    unet = model.model.diffusion_model
    order = [("input", i, b) for i, b in enumerate(unet.input_blocks)] + [("middle", 0, unet.middle_block)] + \
            [("output", i, b) for i, b in enumerate(unet.output_blocks)]
    layers: dict[tuple[str, int, int], int] = {}
    for name, number, block in order:
        for m in block:
            if isinstance(m, SpatialTransformer):
                for depth in range(len(m.transformer_blocks)):
                    layers[(name, number, depth)] = len(layers)
    return layers


def grid_mask(mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """A MASK (``[H, W]`` or ``[1, H, W]``, any size) as a ``[h*w]`` bool mask on a token grid (area, > 0.5)."""
    small = F.interpolate(mask.reshape(1, 1, *mask.shape[-2:]).float(), size=hw, mode="area")
    return (small > 0.5).flatten()


class MutualSelfAttentionPatch:
    """attn1 replace patch: in every chunk's (source, target) rows, the target attends to the
    source's keys and values once the step and layer are past the schedule's start; with masks,
    foreground to foreground and background to background."""

    def __init__(self, schedule: MutualSchedule, layers: dict, masks: tuple | None = None):
        self.schedule, self.layers, self.masks = schedule, layers, masks
        self.grids: dict = {}

    def token_masks(self, latent_hw: tuple[int, int], tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        hw = token_grid(latent_hw, tokens)
        if hw not in self.grids:
            self.grids[hw] = tuple(grid_mask(m, hw) for m in self.masks)
        return self.grids[hw]

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        chunks, rows = pair_rows(q, extra_options, NAME)
        block = extra_options["block"]
        layer = self.layers[(block[0], block[1], extra_options.get("block_index", 0))]
        step, _ = sampling_step(extra_options)
        if not self.schedule.active(step, layer):
            return host_attention(q, k, v, extra_options)
        if not self.masks:   # the target's queries on the source's keys and values: one call for all rows
            return host_attention(q, *rows_from_source(chunks, rows, k, v, kinds=(0, 1)), extra_options)
        out = host_attention(q, k, v, extra_options).clone()
        masks = self.token_masks(tuple(extra_options["original_shape"][-2:]), q.shape[1])
        for c in range(len(chunks)):   # conditional and unconditional pairs alike, as in the paper
            s = c * rows
            pair = (q[s:s + 2], k[s:s + 2], v[s:s + 2], heads)
            target = masked_mutual_target(*pair, *masks)
            out[s + 1] = target[0].to(out.dtype)
        return out


class MutualRun(PairRun):
    """OUTER_SAMPLE wrapper of MasaCtrl (``PairRun``): refuses a run whose steps all come before
    ``start_step``."""

    node = NAME

    def __init__(self, start_step: int, source: list):
        super().__init__(source)
        self.start_step = start_step

    def idle(self, steps: int) -> str | None:
        if self.start_step < steps:
            return None
        return (f"input 'start_step' is {self.start_step}, but the run has {steps} steps, so MasaCtrl would never act; "
                f"give a start_step below {steps} (paper: 4).")
