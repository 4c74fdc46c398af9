"""SDEdit, Meng et al. 2022: The baseline without inversion: the stock KSampler at denoise below 1 with
the target prompt.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "SDEdit", "guidance", (), "Meng et al. 2022", "denoise 0.6 (paper's t0 0.5-0.6)",
    "2N × denoise: the stock KSampler", ("Toy - SDEdit baseline",), ("toyworld", "SDEdit (denoise"),
    "The baseline without inversion: the stock KSampler at denoise below 1 with the target prompt.")
