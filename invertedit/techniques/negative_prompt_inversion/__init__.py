"""Negative-Prompt Inversion, Miyake et al. 2023: Uses the source prompt as the negative, so the
reconstruction survives guidance at no extra cost.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Negative-Prompt Inversion", "inversion", ("InvertEditNegativePromptInversion",),
    "Miyake et al. 2023", "source prompt as negative", "N, no extra",
    ("Toy - Inversion under guidance",), ("toyworld", "Negative-prompt inversion + naive regeneration"),
    "Uses the source prompt as the negative, so the reconstruction survives guidance at no extra cost.")
