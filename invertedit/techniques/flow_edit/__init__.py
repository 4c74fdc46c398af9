"""FlowEdit, Kulikov et al. 2025: Inversion-free editing with Flux.1 and SD3 (here also Qwen-Image): the edit
ODE follows the target's minus the source's velocity on noisy copies of the image.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "FlowEdit", "flow", ("InvertEditFlowEdit",), "Kulikov et al. 2025",
    "Flux: 28 steps, n_max 24, guidance 1.5 / 5.5; SD3: 50 steps, n_max 33, cfg 3.5 / 13.5; Qwen-Image (none by "
    "the authors: SD3's, the cfgs at Qwen-Image's scale): 50 steps, n_max 33, cfg 2 / 7.5; n_min 0, n_avg 1",
    "no inversion; 2 rows per acting step and noise (SD3, Qwen-Image with cfg: 4), one batched call (Qwen-Image: a "
    "call per prompt where the prompts differ in token count, as the host runs its unpadded text)",
    ("Flux - FlowEdit", "SD3 - FlowEdit", "Flux - FlowEdit (one node)", "Qwen-Image - FlowEdit",
     "Wan 2.1 - Clip edit (FlowEdit)"), None,
    "Inversion-free editing with Flux.1, SD3, Qwen-Image and Wan 2.x clips: the edit ODE follows the target's minus the source's velocity "
    "on noisy copies of the image.",
    settings={"InvertEditFlowEdit.source_guidance": 1.5, "InvertEditFlowEdit.target_guidance": 5.5,
              "InvertEditFlowEdit.n_max": 24, "InvertEditFlowEdit.n_min": 0, "InvertEditFlowEdit.n_avg": 1})
