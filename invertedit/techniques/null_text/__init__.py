"""Null-text inversion, Mokady et al. 2023: Optimises one null-text embedding per step so that guided
sampling follows the inversion.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Null-text inversion", "inversion", ("InvertEditNullTextOptimize",),
    "Mokady et al. 2023", "10 inner Adam steps, lr 0.01, early stop 1e-5 + i·2e-5",
    "N + up to 10N forward and backward", ("Toy - Null-text inversion and edit", "SD1.5 - Null-text inversion and edit"),
    ("toyworld", "Null-text inversion + naive regeneration"),
    "Optimises one null-text embedding per step so that guided sampling follows the inversion.",
    settings={"InvertEditNullTextOptimize.inner_steps": 10, "InvertEditNullTextOptimize.learning_rate": 0.01},
    quick={"InvertEditNullTextOptimize": {"inner_steps": 1}})
