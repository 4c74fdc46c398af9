"""Custom Diffusion, Kumari et al. 2023: Teaches the model a subject from a few photos in its
cross-attention keys and values and a new word; the change is a LoRA of .diff weights for
LoraLoader, the word an embedding file.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Custom Diffusion", "personalise", ("InvertEditCustomDiffusion",),
    "Kumari et al. 2023",
    "cross-attention keys and values + a modifier word from \"ktn\", AdamW lr 4e-5 (the README's 1e-5 × batch 2 × 2 "
    "with the prior), batch 2, 250 steps, prior loss λ 1, scale augmentation and flips (diffusers' "
    "train_custom_diffusion.py and its README; SDXL: the word in both encoders, the pack's extension)",
    "the pictures' VAE encodes, then steps × (text encoder + one UNet forward of photos and class pictures + one "
    "backward) once, then stock sampling",
    ("Toy - Custom Diffusion subject", "SD1.5 - Custom Diffusion", "SDXL - Custom Diffusion"),
    ("dreambooth_toy", "Custom Diffusion"),
    "Teaches the model a subject from a few photos in its cross-attention keys and values and a new word; the "
    "change is a LoRA of .diff weights for LoraLoader, the word an embedding file.",
    settings={"InvertEditCustomDiffusion.steps": 250, "InvertEditCustomDiffusion.learning_rate": 0.00004,
              "InvertEditCustomDiffusion.batch_size": 2, "InvertEditCustomDiffusion.prior_loss_weight": 1.0},
    quick={"InvertEditCustomDiffusion": {"steps": 2}})
