"""Stable Flow, Avrahami et al. 2025 (Stable Flow): The source and the edit sample as one pair, the
source following the image's inversion; in the vital blocks the edit attends with the source's image
keys and values.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Stable Flow", "flow", ("InvertEditStableFlowInvert", "InvertEditStableFlow"),
    "Avrahami et al. 2025 (Stable Flow)",
    "vital blocks: double 0, 1, 17, 18 and single 9, 34, 35, 37, 6 (Flux.1 dev); 50 steps; latent nudged 1.15, "
    "guidance 1 inverting; guidance 1 (source) and 3 (edit)",
    "N to invert, N to sample a batch of 2 (source and edit; stock euler)", ("Flux - Stable Flow",), None,
    "The source and the edit sample as one pair, the source following the image's inversion; in the vital "
    "blocks the edit attends with the source's image keys and values.",
    settings={"InvertEditStableFlowInvert.steps": 50, "InvertEditStableFlowInvert.guidance": 1.0,
              "InvertEditStableFlowInvert.nudge": 1.15})
