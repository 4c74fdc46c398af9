"""Fixed-point inversion, Garibi et al. 2024 (ReNoise); Pan et al. 2023 (AIDI): DDIM inversion whose
every step is iterated to the exact inverse of the sampler's step.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Fixed-point inversion", "inversion", ("InvertEditFixedPointInvert",),
    "Garibi et al. 2024 (ReNoise); Pan et al. 2023 (AIDI)", "4 steps, 9 extra evaluations a step, last 2 averaged",
    "N (1 + iterations)", ("Toy - Fixed-point inversion",), ("inversions", "Fixed-point (ReNoise defaults"),
    "DDIM inversion whose every step is iterated to the exact inverse of the sampler's step.",
    settings={"InvertEditFixedPointInvert.steps": 4, "InvertEditFixedPointInvert.iterations": 9,
              "InvertEditFixedPointInvert.average": 2},
    quick={"InvertEditFixedPointInvert": {"iterations": 2, "average": 1}})
