"""MasaCtrl, Cao et al. 2023: The target's self-attention reads the source's keys and values,
optionally mask-guided.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "MasaCtrl", "attention", ("InvertEditMasaCtrl",), "Cao et al. 2023",
    "from step 4, layer 10", "4N", ("Toy - MasaCtrl edit",), ("toyworld", "Direct inversion + MasaCtrl"),
    "The target's self-attention reads the source's keys and values, optionally mask-guided.",
    settings={"InvertEditMasaCtrl.start_step": 4, "InvertEditMasaCtrl.start_layer": 10},
    quick={"InvertEditMasaCtrl": {"start_step": 1}})
