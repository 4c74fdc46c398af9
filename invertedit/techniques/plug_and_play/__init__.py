"""Plug-and-Play, Tumanyan et al. 2023: The target takes the source's decoder features and
self-attention maps.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Plug-and-Play", "attention", ("InvertEditPlugAndPlay",), "Tumanyan et al. 2023",
    "features 0.8, self-attention 0.5", "4N", ("Toy - Plug-and-Play edit",), ("toyworld2", "Direct inversion (empty prompt) + Plug-and-Play"),
    "The target takes the source's decoder features and self-attention maps.",
    settings={"InvertEditPlugAndPlay.feature_injection": 0.8, "InvertEditPlugAndPlay.self_attention_injection": 0.5})
