"""Latent Blend, Avrahami et al. 2023 (Blended Latent Diffusion): On a source/target pair, keeps the
target on the source outside a mask.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Latent Blend", "guidance", ("InvertEditLatentBlend",),
    "Avrahami et al. 2023 (Blended Latent Diffusion)", "start 0, end 1", "no extra", ("Toy - Local edit with Latent Blend",),
    ("toyworld", "Direct inversion + Prompt-to-Prompt + Latent Blend"),
    "On a source/target pair, keeps the target on the source outside a mask.")
