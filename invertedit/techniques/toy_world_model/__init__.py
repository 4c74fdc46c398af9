"""Toy World Model: The pack's trained tiny models of the toy worlds: the main job's and the workflows'
model.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Toy World Model", "testing", ("InvertEditToyModel",), "", "two objects, 512 px",
    "a tiny UNet", ("Start here - Invert and edit",), None,
    "The pack's trained tiny models of the toy worlds: the main job's and the workflows' model.")
