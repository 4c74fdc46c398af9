"""Plug-and-Play inside the host (math in ``attention/plug_and_play.py``): the decoder feature
injection as an output-block patch."""
from __future__ import annotations

from ..attention.plug_and_play import PlugAndPlaySchedule
from ..attention.plug_and_play import inject_features
from .pair import pair_rows
from .steps import sampling_step


NAME = "Plug-and-Play"

class FeatureInjection:
    """output_block_patch: entering output block ``block``, the target rows take the source's features."""

    def __init__(self, schedule: PlugAndPlaySchedule, block: int):
        self.schedule, self.block = schedule, block

    def __call__(self, h, hsp, transformer_options):
        if transformer_options.get("block") != ("output", self.block):
            return h, hsp
        chunks, _ = pair_rows(h, transformer_options, NAME)
        step, steps = sampling_step(transformer_options)
        if self.schedule.injects_features(step, steps):
            h = inject_features(h, len(chunks))
        return h, hsp
