"""LayerVerse, Zhirnov et al., ECCV'26 ("LayerVerse: Finding the Sweet Spot for KV-Injection in Training-Free Image
Editing", ``v-gen-ai/LayerVerse``): Flow Invert keeps the image keys and values of a calibrated set of blocks while
inverting (FireFlow, RF-Solver or Euler); LayerVerse KV Inject makes the edit attend with them, in *masked* blocks
outside the editing mask (the background is kept) and in a few *global* blocks everywhere (the edited object's
structure is kept). Flux.1 and SD3/SD3.5.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is ``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "LayerVerse", "flow", ("InvertEditLayerVerse",), "Zhirnov et al. 2026 (ECCV)",
    "Flux.1 dev: masked double 1, single 32-37, global double 2; FireFlow, 15 steps, guidance 1 inverting and 2 "
    "editing; SD3.5 medium: masked 0, 1, 3, 4, 12, 14, 17, 18, 19, global 20-23, 28 steps, cfg 1 inverting and 7.5 "
    "editing; KV-injection at every step; the editing mask from cross-attention (here: a MASK input)",
    "no extra evaluations (the solver's: FireFlow about 1 a step); kept keys and values of the allocation's blocks, "
    "about 0.4 GB per evaluation per megapixel for Flux.1 dev's 8 (bfloat16; 6.4 GB for 15 FireFlow steps), 0.45 GB "
    "for SD3.5 medium's 13 and their 5 second attentions, computed",
    ("Flux - LayerVerse (FireFlow)", "SD3 - LayerVerse (FireFlow)"), ("toyworld_flow", "LayerVerse + FireFlow ("),
    "Flow Invert keeps the image keys and values of LayerVerse's calibrated blocks; the edit attends with them outside "
    "the editing mask in the masked blocks and everywhere in the few global blocks (Flux.1, SD3/SD3.5).")
