"""Imagic, Kawar et al. 2023: Optimises the target's embedding on the image, fine-tunes a LoRA on it,
then interpolates.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Imagic", "imagic",
    ("InvertEditImagicOptimizeEmbedding", "InvertEditImagicFineTune", "InvertEditImagicInterpolate"), "Kawar et al. 2023",
    "embedding 500 steps lr 1e-3; fine-tune 1000 steps (a rank-8 LoRA here, lr 5e-4); α 0.7",
    "1,500 forward and backward once, then stock sampling", ("Toy - Imagic edit",), ("toyworld", "Imagic"),
    "Optimises the target's embedding on the image, fine-tunes a LoRA on it, then interpolates.",
    settings={"InvertEditImagicOptimizeEmbedding.steps": 500, "InvertEditImagicOptimizeEmbedding.learning_rate": 0.001,
              "InvertEditImagicFineTune.steps": 1000, "InvertEditImagicFineTune.rank": 8,
              "InvertEditImagicFineTune.learning_rate": 0.0005, "InvertEditImagicInterpolate.alpha": 0.7},
    quick={"InvertEditImagicOptimizeEmbedding": {"steps": 1}, "InvertEditImagicFineTune": {"steps": 1}})
