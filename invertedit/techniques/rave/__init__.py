"""RAVE, Kara et al. 2024: Edits a clip consistently by the grid trick: the frames tiled into grids
that the UNet denoises as single pictures, shuffled across the grids at every step.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "RAVE", "attention", ("InvertEditRAVE",), "Kara et al. 2024",
    "grid_size 3, shuffle on, seed 0, 50 steps, cfg 7.5", "N·F (as grids of n² frames)", ("Toy - RAVE clip edit",), None,
    "Edits a clip consistently: the frames tiled into grids the UNet denoises as single pictures (attention across "
    "a grid's frames), shuffled across the grids at every step.",
    settings={"InvertEditRAVE.grid_size": 3, "InvertEditRAVE.shuffle": True, "InvertEditRAVE.seed": 0})
