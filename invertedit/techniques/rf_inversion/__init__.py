"""RF-Inversion, Rout et al. 2025: A controlled forward ODE towards a fixed noise, then a reverse
pulled towards the image by eta in the first steps: a patch on the model for the stock euler
sampler.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "RF-Inversion", "flow", ("InvertEditRFInversionInvert", "InvertEditRFInversion"),
    "Rout et al. 2025", "28 steps, gamma 0.5, guidance 0 while inverting; eta 0.9 from 0 to 0.25 of the steps",
    "N to invert, N to sample (stock euler)", ("Flux - RF-Inversion edit", "SD3 - RF-Inversion edit",
                                             "Wan 2.1 - Clip edit (RF-Inversion)"), None,
    "On Flux.1, SD3 and Qwen-Image: a controlled forward ODE towards a fixed noise, then a reverse pulled towards the image by eta in the "
    "first steps: a patch on the model for the stock euler sampler.",
    settings={"InvertEditRFInversionInvert.steps": 28, "InvertEditRFInversionInvert.gamma": 0.5,
              "InvertEditRFInversionInvert.guidance": 0.0, "InvertEditRFInversion.eta": 0.9,
              "InvertEditRFInversion.start": 0.0, "InvertEditRFInversion.stop": 0.25})
