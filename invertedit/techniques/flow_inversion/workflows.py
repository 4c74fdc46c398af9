"""Flow inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import FLUX, SD3, TOY_FLOW, flow_inversion_edit


def flux_flow_inversion_edit() -> dict:
    return flow_inversion_edit(FLUX, edit_guidance=2.0)   # RF-Solver-Edit's scripts: guidance 2


def sd3_flow_inversion_edit() -> dict:
    return flow_inversion_edit(SD3, edit_guidance=2.0)


WORKFLOWS = {"Flux - Flow inversion and edit": flux_flow_inversion_edit,
             "SD3 - Flow inversion and edit": sd3_flow_inversion_edit}
CHECKPOINT = {"Flux - Flow inversion and edit": (TOY_FLOW, {}),
              "SD3 - Flow inversion and edit": ({}, {"InvertEditFlowInvert": {"steps": 5}})}
