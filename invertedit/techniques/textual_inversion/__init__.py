"""Textual Inversion, Gal et al. 2023: Learns a new word for a subject from 3-5 images, saved where the
host's embedding:<name> prompt syntax reads it.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Textual Inversion", "personalise", ("InvertEditTextualInversion",),
    "Gal et al. 2023",
    "1 vector from a one-token initializer (SDXL: in both encoders, as textual_inversion_sdxl.py), the script's 27 "
    "object templates, AdamW lr 0.002 (the README's 5e-4 × 4), batch 4, 3000 steps (diffusers' textual_inversion.py "
    "and its README)",
    "steps × (text encoder + UNet forward and backward) once, then stock sampling",
    ("Toy - Textual Inversion word", "SD1.5 - Textual Inversion", "SDXL - Textual Inversion"), None,
    "Learns a new word for a subject from 3-5 images, saved where the host's embedding:<name> prompt syntax "
    "reads it.",
    settings={"InvertEditTextualInversion.steps": 3000, "InvertEditTextualInversion.learning_rate": 0.002,
              "InvertEditTextualInversion.batch_size": 4, "InvertEditTextualInversion.num_vectors": 1},
    quick={"InvertEditTextualInversion": {"steps": 2}})
