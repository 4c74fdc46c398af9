"""FateZero, Qi et al. 2023: the source's attention maps fused into the edit of a clip (cross-attention
replaced, self-attention blended by the edited words' mask) with sparse-causal attention.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "FateZero Fusion", "attention", ("InvertEditFateZero",), "Qi et al. 2023",
    "cross replace 0.8, self replace 0.6, blend threshold 0.3; sparse-causal attention",
    "2F rows + F rows a step while blending (the source's maps)", ("Toy - Clip edit (FateZero)",), None,
    "The source's attention maps fused into a clip's edit: cross-attention from the source's maps, self-attention "
    "the source's outside the edited words' mask, with sparse-causal attention across the frames.",
    settings={"InvertEditFateZero.cross_replace": 0.8, "InvertEditFateZero.self_replace": 0.6,
              "InvertEditFateZero.blend_threshold": 0.3})
