"""SEGA, Brack et al. 2023: Semantic guidance: a GUIDER with per-concept thresholded guidance and
momentum.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "SEGA", "guidance", ("InvertEditSEGAConcept", "InvertEditSEGAGuidance"), "Brack et al. 2023",
    "scale 5, threshold 0.9, warm-up 10, momentum 0.1 / 0.4", "(2 + n) N for n concepts", ("Toy - SEGA edit",),
    ("toyworld", "Edit-friendly DDPM + SEGA"),
    "Semantic guidance: a GUIDER with per-concept thresholded guidance and momentum.",
    settings={"InvertEditSEGAConcept.scale": 5.0, "InvertEditSEGAConcept.threshold": 0.9, "InvertEditSEGAConcept.warmup": 10,
              "InvertEditSEGAGuidance.momentum_scale": 0.1, "InvertEditSEGAGuidance.momentum_beta": 0.4})
