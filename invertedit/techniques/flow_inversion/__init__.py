"""Flow inversion, Wang et al. 2024 (RF-Solver); Deng et al. 2024 (FireFlow): Inverts an image with
Flux.1 or SD3 by Euler, RF-Solver's second-order step or FireFlow's midpoint step with the last
velocity reused; the Flow Sampler samples it back.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Flow inversion", "flow", ("InvertEditFlowInvert", "InvertEditFlowSampler"),
    "Wang et al. 2024 (RF-Solver); Deng et al. 2024 (FireFlow)",
    "25 steps, guidance 1 while inverting; solver rf-solver",
    "euler N, rf-solver 2N, fireflow N + 1 to invert, as many to sample", ("Flux - Flow inversion and edit", "SD3 - Flow inversion and edit"),
    None,
    "Inverts an image with Flux.1, SD3 or Qwen-Image by Euler, RF-Solver's second-order step or FireFlow's midpoint step "
    "with the last velocity reused; the Flow Sampler samples it back.",
    settings={"InvertEditFlowInvert.steps": 25, "InvertEditFlowInvert.guidance": 1.0})
