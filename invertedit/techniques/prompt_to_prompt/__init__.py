"""Prompt-to-Prompt, Hertz et al. 2023: The target's branch takes the source's attention maps: replace,
refine, reweight and local blend.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Prompt-to-Prompt", "attention", ("InvertEditAttentionInject",),
    "Hertz et al. 2023", "cross 0.8, self 0.4 (PIE-Bench 0.4 / 0.6), local blend on the edited words (blend words "
    "left empty: those that differ between the prompts), threshold 0.3 from 0.2 of the steps",
    "a pair: 4N at cfg > 1",
    ("Start here - Invert and edit", "Toy - Prompt-to-Prompt replace", "SD1.5 - Prompt-to-Prompt edit", "SDXL - Prompt-to-Prompt edit",
     "SD1.5 - Prompt-to-Prompt edit (one node)"),
    ("toyworld", "Direct inversion + Prompt-to-Prompt replace + local blend"),
    "The target's branch takes the source's attention maps: replace, refine, reweight and local blend.",
    settings={"InvertEditAttentionInject.cross_replace": 0.8, "InvertEditAttentionInject.self_replace": 0.4,
              "InvertEditAttentionInject.blend_threshold": 0.3, "InvertEditAttentionInject.blend_start": 0.2,
              "InvertEditAttentionInject.local_blend": True})
