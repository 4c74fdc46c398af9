"""EDICT, Wallace et al. 2023: Exact inversion with two coupled latent sequences, sampled back by its
own SAMPLER.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "EDICT", "inversion", ("InvertEditEDICTInvert", "InvertEditEDICTSampler"), "Wallace et al. 2023", "mixing 0.93",
    "2N to invert, 2N to sample (two coupled sequences)", ("Toy - EDICT exact inversion",),
    ("toyworld", "EDICT (cfg"),
    "Exact inversion with two coupled latent sequences, sampled back by its own SAMPLER.",
    settings={"InvertEditEDICTInvert.mixing": 0.93})
