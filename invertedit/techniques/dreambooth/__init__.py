"""DreamBooth, Ruiz et al. 2023: Teaches the model a subject from 3-5 photos, bound to an identifier
word, as a LoRA; the prior-preservation loss on class images keeps the class.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "DreamBooth", "personalise", ("InvertEditDreamBoothLoRA", "InvertEditDreamBoothFineTune"), "Ruiz et al. 2023",
    "LoRA rank 4 on the attention projections, AdamW lr 1e-4, 500 steps, batch 1, prior loss λ 1 on class images "
    "the model drew (diffusers' train_dreambooth_lora.py and its README; with a CLIP, the text encoder's "
    "attention too, as its --train_text_encoder); the full fine-tune: every UNet weight (with a CLIP, every "
    "text-model weight too), lr 5e-6, 800 steps (train_dreambooth.py and its README)",
    "steps × (one forward of the instance and class rows together + one backward) once, then stock sampling",
    ("Toy - DreamBooth subject and Custom-Edit", "Toy - DreamBooth fine-tune", "SD1.5 - DreamBooth LoRA", "SDXL - DreamBooth LoRA"),
    ("dreambooth_toy", "DreamBooth LoRA"),
    "Teaches the model a subject from 3-5 photos, bound to an identifier word, as a LoRA; the prior-preservation "
    "loss on class images keeps the class.",
    settings={"InvertEditDreamBoothLoRA.steps": 500, "InvertEditDreamBoothLoRA.learning_rate": 0.0001,
              "InvertEditDreamBoothLoRA.rank": 4, "InvertEditDreamBoothLoRA.prior_loss_weight": 1.0,
              "InvertEditDreamBoothLoRA.batch_size": 1, "InvertEditDreamBoothFineTune.steps": 800,
              "InvertEditDreamBoothFineTune.learning_rate": 0.000005,
              "InvertEditDreamBoothFineTune.prior_loss_weight": 1.0, "InvertEditDreamBoothFineTune.batch_size": 1},
    quick={"InvertEditDreamBoothLoRA": {"steps": 2}, "InvertEditDreamBoothFineTune": {"steps": 2}})
