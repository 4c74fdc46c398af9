"""DragonDiffusion and DiffEditor, Mou et al. (ICLR 2024, CVPR 2024): move, resize and drag on an
inverted image by energy guidance on the UNet decoder's features, with a memory bank of the
inversion's self-attention keys and values (and DiffEditor's regional SDE and time travel).

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

MOVE, DRAG = "InvertEditDragonDiffusionMove", "InvertEditDragonDiffusionDrag"

ROW = Technique(
    "DragonDiffusion / DiffEditor", "spatial", (MOVE, DRAG), "Mou et al. 2024",
    "move: scale 1, cfg 4, energy 0.5 x1e3, w_edit 4, w_content 6, w_contrast 0.2, w_inpaint 0.8; drag: cfg 4, energy 2 x1e3, "
    "w_edit 4, w_content 6, w_inpaint 0.2; regional SDE 0.4; memory bank from step 5 of 50; guidance before step 30; seed 42",
    "inversion N; edit 2N CFG rows + 0.9N bank rows, and 2 rows (the UNet up to the decoder's features) and 2 "
    "backward passes on each of 28 guided tries at 50 steps (+24 rows of time travel): 2.5x a stock CFG run at 5 toy "
    "steps",
    ("Toy - DragonDiffusion move", "SD1.5 - DragonDiffusion move", "SDXL - DragonDiffusion move"),
    ("toyworld2_spatial", "DragonDiffusion Move ("),
    "Move, resize or drag an object of an inverted image by energy guidance on the decoder's features.",
    settings={f"{MOVE}.cfg": 4.0, f"{MOVE}.energy_scale": 0.5, f"{MOVE}.w_edit": 4.0, f"{MOVE}.w_content": 6.0,
              f"{MOVE}.w_contrast": 0.2, f"{MOVE}.w_inpaint": 0.8, f"{MOVE}.sde_strength": 0.4, f"{MOVE}.seed": 42,
              f"{MOVE}.scale": 1.0,
              f"{DRAG}.cfg": 4.0, f"{DRAG}.energy_scale": 2.0, f"{DRAG}.w_edit": 4.0, f"{DRAG}.w_content": 6.0,
              f"{DRAG}.w_inpaint": 0.2, f"{DRAG}.sde_strength": 0.4, f"{DRAG}.seed": 42},
    # the quick lane's 256 px picture: the toy workflow's move at half its size
    quick={MOVE: {"dx": 70.0, "dy": -20.0}})
