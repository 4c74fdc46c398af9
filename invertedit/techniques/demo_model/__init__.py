"""Demo Model: Seeded random-weight SD1.x / SD2.x-v / SDXL models for mechanics tests; noise, not
pictures.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Demo Model", "testing", ("InvertEditDemoModel", "InvertEditDemo3DModel"), "", "sd1, seed 0", "a tiny UNet",
    ("Toy - SDXL demo model (random weights)",), None,
    "Seeded random-weight SD1.x / SD2.x-v / SDXL models for mechanics tests; noise, not pictures.")
