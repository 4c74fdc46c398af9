"""RF-Solver-Edit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import FLUX, TOY_FLOW, flow_inversion_edit


def flux_rf_solver_edit() -> dict:
    return flow_inversion_edit(FLUX, edit_guidance=2.0, share=5)   # RF-Solver-Edit's examples: guidance 2, 2-5 steps


WORKFLOWS = {"Flux - RF-Solver-Edit": flux_rf_solver_edit}
CHECKPOINT = {"Flux - RF-Solver-Edit": (dict(TOY_FLOW, InvertEditFlowInvert={"share_from_block": 2}), {})}
