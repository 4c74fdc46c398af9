"""ConsistEdit, Yin et al., SIGGRAPH Asia 2025 ("ConsistEdit: Highly Consistent and Precise Training-free Visual
Editing", ``zxYin/ConsistEdit_Code``): on an MM-DiT's joint attention, the edit's vision tokens take the source's
queries and keys in the first steps (the consistency strength) and, outside the edited object's region (a mask
from the source's attention on the object's words), its queries, keys and values at every step; the text tokens
keep their own.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is ``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "ConsistEdit", "flow", ("InvertEditConsistEdit",), "Yin et al. 2025 (ConsistEdit)",
    "consistency strength 0.1 for real images (the first int(0.1 N) steps share all vision queries and keys; "
    "authors' synthesis scripts: 1.0); mask: the source's image-to-word attention averaged over the inversion's "
    "steps and the controlled blocks, min-max normalised, edit region above 0.1; every SD3 joint block, Flux's "
    "single blocks; 28 steps, SD3 at guidance 1",
    "N + 1 evaluations of one row for the mask (the authors make it while inverting), then N of a batch of 2 "
    "(source and edit); per controlled block three row gathers and three selects",
    ("SD3 - ConsistEdit", "Flux - ConsistEdit"), ("toyworld_flow", "ConsistEdit ("),
    "The edit's vision tokens take the source's queries and keys in the first steps and, outside the edited "
    "object's attention mask, its queries, keys and values at every step, so structure and background stay the "
    "image's while the object changes.",
    settings={"InvertEditConsistEdit.consistency_strength": 0.1,
              "InvertEditConsistEdit.mask_threshold": 0.1})
