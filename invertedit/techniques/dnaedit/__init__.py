"""DNAEdit, Xie et al. 2025 (NeurIPS): Direct Noise Alignment for text-guided rectified-flow editing: an
inversion that aligns its noise with each step's velocity error and records where each step evaluated the
model, then an edit by Mobile Velocity Guidance, one target evaluation a step.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "DNAEdit", "flow", ("InvertEditDNAEditInvert", "InvertEditDNAEdit"), "Xie et al. 2025",
    "Flux: 28 steps, start_step 4, guidance 1 while inverting, 2.5 to edit, mvg 0.8; SD3.5: 40 steps, start_step 13, "
    "cfg 3.5 to edit, mvg 0.8 (the authors' configs; 0.85 in their function's signature and the RF-Image-Editing "
    "reimplementation); align noise on (off: the reimplementation)",
    "N - start_step to invert, N - start_step to edit (stock euler; SD3's cfg: 2 rows a step, one call)",
    ("Flux - DNAEdit", "SD3 - DNAEdit"), ("toyworld_flow", "DNAEdit ("),
    "On Flux.1 and SD3/SD3.5: an inversion that aligns its noise with each step's velocity error and keeps "
    "where each step evaluated the model, then Mobile Velocity Guidance pulls the target's velocity towards the "
    "source moved by the velocity difference; a GUIDER for the stock euler sampler.",
    settings={"InvertEditDNAEditInvert.start_step": 4, "InvertEditDNAEditInvert.guidance": 1.0,
              "InvertEditDNAEditInvert.align_noise": True,
              "InvertEditDNAEdit.mvg": 0.8, "InvertEditDNAEdit.guidance": 2.5},
    quick={"InvertEditDNAEditInvert": {"start_step": 1}})
