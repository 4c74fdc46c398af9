"""TokenFlow, Geyer et al. 2024: Edits a clip consistently: keyframes edited jointly (extended
self-attention, Plug-and-Play injection), every frame taking their edited features through the
source's nearest-neighbour field.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "TokenFlow", "attention", ("InvertEditTokenFlow",), "Geyer et al. 2024",
    "50 steps, cfg 7.5, batch_size 8, pnp_attn_t 0.5, pnp_f_t 0.8, seed 1", "N·F(3 + 3/b)", ("Toy - TokenFlow clip edit",),
    ("toyworld2_clips", "TokenFlow (node defaults"),
    "Edits a clip consistently: a random keyframe per batch of frames edited jointly (extended self-attention, "
    "Plug-and-Play injection), every frame taking their edited self-attention through the source's nearest-neighbour "
    "field.",
    settings={"InvertEditTokenFlow.batch_size": 8, "InvertEditTokenFlow.self_attention_injection": 0.5,
              "InvertEditTokenFlow.feature_injection": 0.8, "InvertEditTokenFlow.seed": 1})
