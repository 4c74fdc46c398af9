"""DragDiffusion, Shi et al. CVPR 2024: Drags handle points of a real image to target points by optimising its
inverted latent (motion supervision and point tracking on the UNet decoder's features), then denoises it with the
original latent as the self-attention reference; an identity LoRA first keeps the image.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "DragDiffusion", "spatial", ("InvertEditDragDiffusionLoRA", "InvertEditDragDiffusion"), "Shi et al. CVPR 2024",
    "LoRA 80 steps rank 16 lr 5e-4 batch 4; inversion 0.7 of 50 DDIM steps; 80 latent steps lr 0.01, r_m 1, r_p 3, "
    "lam 0.1, decoder level 3; reference attention from step 0, layer 10",
    "4 x 80 (LoRA) + 2 x 80 (drag) + 2 x 0.7N",
    ("Toy - DragDiffusion drag", "SD1.5 - DragDiffusion drag"), ("toyworld2_spatial", "DragDiffusion (the toy"),
    "Drags handle points to targets by optimising the inverted latent on the decoder's features, then denoises it "
    "with the original latent as the self-attention reference.",
    settings={"InvertEditDragDiffusionLoRA.steps": 80, "InvertEditDragDiffusionLoRA.learning_rate": 0.0005,
              "InvertEditDragDiffusionLoRA.rank": 16, "InvertEditDragDiffusionLoRA.batch_size": 4,
              "InvertEditDragDiffusion.n_pix_step": 80, "InvertEditDragDiffusion.lr": 0.01,
              "InvertEditDragDiffusion.r_m": 1, "InvertEditDragDiffusion.r_p": 3, "InvertEditDragDiffusion.lam": 0.1,
              "InvertEditDragDiffusion.feature_idx": 3, "InvertEditDragDiffusion.start_step": 0,
              "InvertEditDragDiffusion.start_layer": 10},
    quick={"InvertEditDragDiffusionLoRA": {"steps": 2}, "InvertEditDragDiffusion": {"n_pix_step": 3}})
