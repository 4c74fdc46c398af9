"""MasaCtrl inside the host (its policy: ``attention/mutual.py``'s ``MutualSelfAttention``): the
UNet's self-attention layers in execution order, and the run's checks."""
from __future__ import annotations

from comfy.ldm.modules.attention import SpatialTransformer

from .pair import PairRun


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
