"""DiffEdit mask, Couairon et al. 2023: Finds where an edit happens from where the source and target
prompts' noise predictions disagree.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "DiffEdit mask", "guidance", ("InvertEditDiffEditMask",), "Couairon et al. 2023",
    "strength 0.5, 10 samples, threshold 0.5", "2 per sample: 20", ("Toy - Local edit with Latent Blend",),
    ("toyworld2", "Direct inversion + P2P + Latent Blend (DiffEdit mask"),
    "Finds where an edit happens from where the source and target prompts' noise predictions disagree.",
    settings={"InvertEditDiffEditMask.strength": 0.5, "InvertEditDiffEditMask.samples": 10,
              "InvertEditDiffEditMask.threshold": 0.5},
    quick={"InvertEditDiffEditMask": {"samples": 2}})
