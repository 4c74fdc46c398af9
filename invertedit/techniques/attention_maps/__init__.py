"""Attention maps, Hertz et al. 2023: Per-word cross-attention heatmaps on the inversion's trajectory,
and a mask of chosen words (on Flux and SD3 from the joint attention).

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Attention maps", "attention", ("InvertEditAttentionStore",), "Hertz et al. 2023",
    "cross-attention at 16x16 of a 64x64 latent, averaged over steps; mask threshold 0.3; Flux/SD3/Qwen-Image: the "
    "joint attention's image-to-text probabilities, every block", "N", ("Toy - Attention maps", "Flux - Attention maps"), None,
    "Per-word cross-attention heatmaps on the inversion's trajectory, and a mask of chosen words (on Flux, SD3 "
    "and Qwen-Image from the joint attention).",
    settings={"InvertEditAttentionStore.threshold": 0.3})
