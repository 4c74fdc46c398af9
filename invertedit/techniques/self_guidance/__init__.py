"""Self-Guidance, Epstein et al. 2023 (NeurIPS): guidance by the model's own cross-attention and features
(an object's position, size, shape and appearance), here a move / resize of one object of a real image
from its DDIM inversion.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

NODE = "InvertEditSelfGuidance"

ROW = Technique(
    "Self-Guidance", "spatial", (NODE,), "Epstein et al. 2023",
    "the paper's terms (centroid, size, shape, appearance; L1) and guided noise eps_cfg + v sigma_t grad g; "
    "weights and schedule not given for SD (no code released), set on the toy world: v 3000, cfg 7.5, position 1, "
    "size 1, appearance 0.05, kept shapes 0.5, moved shape 1, soft threshold 10, guide_until 0.8 (the first 80% of the "
    "steps guided)",
    "each guided step 1 source row (no gradient) + 2 rows with one backward pass, the rest 2 rows (toy world 2, 10 "
    "steps: 28 rows against 20, 2.4x stock's time); 1 row at node time without a mask",
    ("Toy - Self-Guidance move", "SD1.5 - Self-Guidance move", "SDXL - Self-Guidance move"), ("toyworld2_spatial", "Self-Guidance (the toy"),
    "Moves or resizes one object of an inverted image by guiding the sampler with the model's own "
    "cross-attention (the word's centroid and size) while the other words' shapes and every word's appearance "
    "stay those of the source; a GUIDER for the stock ddim sampler.",
    settings={f"{NODE}.guidance": 3000.0, f"{NODE}.cfg": 7.5, f"{NODE}.position_weight": 1.0,
              f"{NODE}.size_weight": 1.0, f"{NODE}.appearance_weight": 0.05, f"{NODE}.shape_weight": 0.5,
              f"{NODE}.moved_shape_weight": 1.0, f"{NODE}.sharpness": 10.0, f"{NODE}.guide_until": 0.8})
