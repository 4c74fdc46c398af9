"""Proximal guidance, Han et al. 2024 (ProxEdit): A GUIDER whose guidance term is thresholded by a
quantile of its magnitude.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Proximal guidance", "guidance", ("InvertEditProximalGuidance",),
    "Han et al. 2024 (ProxEdit)", "l0, quantile 0.7, inversion pull rate 1 below t 400", "4N, as a stock pair",
    ("Toy - Proximal Guidance edit",), ("toyworld", "Negative-prompt inversion + Prompt-to-Prompt (PIE-Bench) + Proximal"),
    "A GUIDER whose guidance term is thresholded by a quantile of its magnitude.",
    settings={"InvertEditProximalGuidance.quantile": 0.7, "InvertEditProximalGuidance.recon_lr": 1.0,
              "InvertEditProximalGuidance.recon_t": 400.0})
