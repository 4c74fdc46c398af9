"""FlowAlign, Kim et al. 2025: inversion-free editing with SD3 (here also Flux.1 and Qwen-Image): FlowEdit's edit
ODE at every step, the target guided over the source prompt, with a flow-matching regulariser towards the source.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is ``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "FlowAlign", "flow", ("InvertEditFlowAlign",), "Kim et al. 2025",
    "SD3: 33 steps (every one acting), guidance 13.5 (the target over the source prompt), regularization 0.01",
    "no inversion; 3 rows a step (the target and the source at the edit, the source at the image), one batched call; "
    "2 at guidance 1",
    ("SD3 - FlowAlign", "Flux - FlowAlign"), ("toyworld_flow", "FlowAlign ("),
    "Inversion-free editing with SD3, Flux.1 and Qwen-Image: FlowEdit's velocity difference, the target guided over "
    "the source prompt, plus a flow-matching regulariser that keeps the edit's trajectory near the source's.",
    settings={"InvertEditFlowAlign.guidance": 13.5, "InvertEditFlowAlign.regularization": 0.01})
