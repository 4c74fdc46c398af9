"""Edit-friendly DDPM, Huberman-Spiegelglas et al. 2024: Solves for each DDPM step's noise map, so
reconstruction is exact and edits keep the structure.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Edit-friendly DDPM", "inversion", ("InvertEditDDPMInvert", "InvertEditDDPMSampler"),
    "Huberman-Spiegelglas et al. 2024", "100 steps, skip 36, cfg 3.5", "2N (N at cfg 1)",
    ("Toy - Edit-friendly DDPM inversion", "SD1.5 - LEDITS++ edit"), ("toyworld", "Edit-friendly DDPM (cfg 3.5) + target prompt"),
    "Solves for each DDPM step's noise map, so reconstruction is exact and edits keep the structure.",
    settings={"InvertEditDDPMInvert.steps": 100, "InvertEditDDPMInvert.start_at_step": 36, "InvertEditDDPMInvert.cfg": 3.5})
