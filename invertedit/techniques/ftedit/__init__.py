"""FTEdit, Xu et al. CVPR 2025 ("Unveil Inversion and Invariance in Flow Transformer for Versatile Image
Editing", ``Pengchengpcx/FTEdit``): FTEdit Invert solves each Euler step of the inversion as a fixed point
(the velocity averaged over its iterations); FTEdit samples the source and the edit as one pair whose
source row follows the inversion, the edit keeping the source's text features where the prompts agree
(AdaLN invariance) and, in the first steps, its attention values. SD3/SD3.5 as the authors' code; Flux.1 on the
blocks and guidance of Justin900429/RF-Image-Editing's port.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "FTEdit", "flow", ("InvertEditFTEditInvert", "InvertEditFTEdit"),
    "Xu et al. 2025 (FTEdit, CVPR)",
    "30 steps; inversion: 2 fixed-point iterations a step, the velocities of iterations 0 to 5 (all 3) averaged, no "
    "guidance; edit: AdaLN "
    "invariance in all steps (ly_ratio 1.0), attention values in the first 0.15 (4 of 30), CFG 2, euler; every "
    "joint block but the last (SD3.5 Large: 37 of 38); Flux (Justin900429/RF-Image-Editing's port): 25 steps, "
    "guidance 2, the 19 double-stream blocks",
    "3N to invert (2 iterations); N to sample a batch of 2 (source and edit) with CFG, the source row following the "
    "inversion; the control adds a few gathers per joint attention call",
    ("Flux - FTEdit", "SD3 - FTEdit"), ("toyworld_flow", "FTEdit ("),
    "FTEdit Invert solves each Euler step of the inversion as a fixed point, the velocity averaged over its "
    "iterations; FTEdit samples the source and the edit as one pair whose source row follows the inversion, the "
    "edit keeping the source's text features where the prompts agree (AdaLN invariance) and, in the first steps, "
    "its attention values.",
    settings={"InvertEditFTEditInvert.steps": 30, "InvertEditFTEditInvert.iterations": 2,
              "InvertEditFTEditInvert.average_from": 0, "InvertEditFTEditInvert.average_until": 5,
              "InvertEditFTEdit.adaln_steps": 1.0, "InvertEditFTEdit.attention_steps": 0.15,
              "InvertEditFTEdit.guidance": 2.0})
