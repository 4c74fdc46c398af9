"""Saved inversions: Writes an INVERSION to a file and reads it back bit for bit: invert once, edit
many times.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Saved inversions", "inversion", ("InvertEditSaveInversion", "InvertEditLoadInversion"),
    "", "safetensors, never pickle", "none", ("Toy - Load a saved inversion",), None,
    "Writes an INVERSION to a file and reads it back bit for bit: invert once, edit many times.")
