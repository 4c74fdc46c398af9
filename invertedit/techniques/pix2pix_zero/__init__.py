"""pix2pix-zero, Parmar et al. 2023: Regularised inversion, an edit direction of sentence embeddings,
and cross-attention guidance.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "pix2pix-zero", "guidance",
    ("InvertEditPix2PixZeroInvert", "InvertEditEditDirection", "InvertEditCrossAttentionGuidance"), "Parmar et al. 2023",
    "λ auto-correlation 20, λ KL 20, 5 regularisation steps, cross-attention guidance 0.1",
    "inversion N; edit 6N rows and one backward a step", ("Toy - pix2pix-zero edit",),
    ("toyworld", "Pix2Pix-Zero inversion + edit direction"),
    "Regularised inversion, an edit direction of sentence embeddings, and cross-attention guidance.",
    settings={"InvertEditPix2PixZeroInvert.lambda_auto_corr": 20.0, "InvertEditPix2PixZeroInvert.lambda_kl": 20.0,
              "InvertEditPix2PixZeroInvert.reg_steps": 5, "InvertEditCrossAttentionGuidance.guidance_amount": 0.1},
    quick={"InvertEditPix2PixZeroInvert": {"reg_steps": 1, "auto_corr_rolls": 1}})
