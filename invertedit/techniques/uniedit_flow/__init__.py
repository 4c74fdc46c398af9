"""UniEdit-Flow, Jiao et al., ICLR'26 ("UniEdit-Flow: Unleashing Inversion and Editing in the Era of Flow Models"):
Uni-Inv, a predictor-corrector inversion that the plain Euler step retraces, stopped early at alpha of the
schedule; Uni-Edit, the source and target velocities fused by a mask of their difference, the difference amplified
by omega, sampled with Euler from the early stop. Flux.1 and SD3 (the authors' code: ``DSL-Lab/UniEdit-Flow``).

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is ``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "UniEdit-Flow", "flow", ("InvertEditUniInv", "InvertEditUniEditFlow"), "Jiao et al. 2026 (ICLR)",
    "15 steps, alpha 0.6, omega 5, guidance 1 (Flux dev's distilled; SD3 without classifier-free guidance), "
    "the inversion with the empty prompt, zero initial off",
    "Uni-Inv: floor(alpha N) + 1 evaluations (zero initial: floor(alpha N)); Uni-Edit: 2 rows per step for "
    "floor(alpha N) steps, one batched call (SD3 with cfg: 3 rows)",
    ("Flux - UniEdit-Flow", "SD3 - UniEdit-Flow"), ("toyworld_flow", "UniEdit-Flow ("),
    "Inverts with Uni-Inv's predictor-corrector up to alpha of the schedule and edits from there with Uni-Edit's "
    "mask-fused source and target velocities (Flux.1, SD3).",
    settings={"InvertEditUniInv.steps": 15, "InvertEditUniInv.guidance": 1.0, "InvertEditUniInv.alpha": 0.6,
              "InvertEditUniInv.zero_initial": False,
              "InvertEditUniEditFlow.omega": 5.0, "InvertEditUniEditFlow.guidance": 1.0})
