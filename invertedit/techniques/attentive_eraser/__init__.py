"""Attentive Eraser, Sun et al., AAAI 2025: object removal on a DDIM inversion: the removal branch's
self-attention ignores the object (AAS), guided away from the plain branch (SARG).

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Attentive Eraser", "spatial", ("InvertEditAttentiveEraser",), "Sun et al. 2025",
    "SARG scale 9, AAS on every step and the decoder's self-attention (SD 7-16, SDXL 34-70), similarity "
    "suppression 0.3 for steps 0-9, mask blurred 7 taps and thresholded at 0.1, DDIM inversion with an empty prompt",
    "2N", ("Toy - Attentive Eraser remove", "SD1.5 - Attentive Eraser remove", "SDXL - Attentive Eraser remove"),
    ("toyworld2_spatial", "Attentive Eraser (the toy"),
    "Object removal: a removal branch whose self-attention ignores the object's tokens, guided away from the plain "
    "branch, the rest kept on the inversion.",
    settings={"InvertEditAttentiveEraser.removal_scale": 9.0, "InvertEditAttentiveEraser.ss_steps": 9,
              "InvertEditAttentiveEraser.ss_scale": 0.3, "InvertEditAttentiveEraser.start_step": 0,
              "InvertEditAttentiveEraser.mask_blur": 7})
# end_step, start_layer and end_layer default to -1, "as the code on this model" (every step; the decoder's
# self-attention layers), which the code writes as numbers of SD's and SDXL's UNets: nodes.py's AUTO.
