"""Direct Inversion, Ju et al. 2024 (PnP Inversion): Puts the source rows back on the inversion's
trajectory at every step: exact reconstruction at any cfg.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Direct Inversion", "inversion", ("InvertEditDirectInversion",),
    "Ju et al. 2024 (PnP Inversion)", "on the DDIM trajectory",
    "N, no extra; with Prompt-to-Prompt the unused source rows are left out",
    ("Start here - Invert and edit", "Toy - Prompt-to-Prompt replace", "SD1.5 - Prompt-to-Prompt edit", "SDXL - Prompt-to-Prompt edit"),
    ("toyworld", "Direct inversion + Prompt-to-Prompt replace (paper defaults"),
    "Puts the source rows back on the inversion's trajectory at every step: exact reconstruction at any cfg.")
