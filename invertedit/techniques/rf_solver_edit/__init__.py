"""RF-Solver-Edit, Wang et al. 2024 (RF-Solver-Edit): Flow Invert keeps the attention values of Flux's
last single blocks while inverting; Share Values makes the edit attend with them in the first steps,
so it keeps the image's layout.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "RF-Solver-Edit", "flow", ("InvertEditShareValues",),
    "Wang et al. 2024 (RF-Solver-Edit)",
    "the values of single blocks 20 to 37 shared in the first sampling steps (code: 20 of 25, examples 2-5); "
    "guidance 2 when editing; Qwen-Image (none by the authors): the image tokens' values of joint blocks 20 to 59",
    "no extra evaluations; kept values about 1 GB per step per megapixel (bfloat16; Qwen-Image about 2), computed; on the model's device, or offloaded to the CPU as the authors'",
    ("Flux - RF-Solver-Edit",), None,
    "Flow Invert keeps the attention values of Flux's last single blocks (Qwen-Image's last joint blocks' image tokens) while inverting; Share Values makes "
    "the edit attend with them in the first steps, so it keeps the image's layout.",
    # Flow Invert shows the keeper's inputs (``glue.py``); their paper defaults are this technique's
    settings={"InvertEditFlowInvert.share_from_block": 20})
