"""DDIM inversion, Song et al. 2021; Dhariwal & Nichol 2021: Runs deterministic DDIM backwards from the
image's latent to noise through the host's sampling path; Apply Inversion checks every sampling run
against it.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "DDIM inversion", "inversion", ("InvertEditDDIMInvert", "InvertEditApplyInversion"),
    "Song et al. 2021; Dhariwal & Nichol 2021", "50 steps, cfg 1", "N",
    ("Toy - DDIM inversion and edit", "Toy - DDIM inversion with the custom sampler", "SD1.5 - DDIM inversion and edit",
     "SDXL - DDIM inversion and edit"),
    ("toyworld", "DDIM inversion: reconstruction"),
    "Runs deterministic DDIM backwards from the image's latent to noise through the host's sampling path; "
    "Apply Inversion checks every sampling run against it.",
    settings={"InvertEditDDIMInvert.steps": 50, "InvertEditDDIMInvert.cfg": 1.0})
