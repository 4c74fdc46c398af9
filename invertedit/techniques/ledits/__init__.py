"""LEDITS++, Brack et al. 2024: Concept guidance confined to implicit masks, on an edit-friendly DDPM
inversion.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "LEDITS++", "guidance", ("InvertEditLEDITSConcept", "InvertEditLEDITSGuidance"),
    "Brack et al. 2024", "scale 5, threshold 0.9, intersect masks", "(1 + n) N for n concepts",
    ("Toy - LEDITS++ edit", "SD1.5 - LEDITS++ edit"), ("toyworld", "Edit-friendly DDPM (empty prompt) + LEDITS++"),
    "Concept guidance confined to implicit masks, on an edit-friendly DDPM inversion.",
    settings={"InvertEditLEDITSConcept.scale": 5.0, "InvertEditLEDITSConcept.threshold": 0.9})
