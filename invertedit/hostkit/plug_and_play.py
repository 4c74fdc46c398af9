"""Plug-and-Play inside the host (math in ``attention/plug_and_play.py``): the decoder feature
injection as an output-block patch."""
from __future__ import annotations

from ..attention.plug_and_play import PlugAndPlaySchedule
from ..attention.plug_and_play import inject_features
from ..attention.prompt_to_prompt import self_steps
from .pair import PairRun, least_fraction, pair_rows
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


class PlugAndPlayRun(PairRun):
    """OUTER_SAMPLE wrapper of Plug-and-Play (``PairRun``): refuses a run in which neither the
    features nor the self-attention maps are injected at any step (both fractions give 0 steps)."""

    node = NAME

    def __init__(self, schedule: PlugAndPlaySchedule, source: list):
        super().__init__(source)
        self.schedule = schedule

    def idle(self, steps: int) -> str | None:
        s = self.schedule
        if int(s.features * steps) or self_steps(0.0, s.self_attention, steps)[1]:
            return None
        return (f"inputs 'feature_injection' ({s.features:g}) and 'self_attention_injection' ({s.self_attention:g}) "
                f"inject in none of the run's {steps} steps (each in the first int(f * N) = 0), so Plug-and-Play would "
                f"never act; give one of them {least_fraction(lambda f: int(f * steps)):g} or more (paper: 0.8 and "
                f"0.5), or sample more steps.")
