"""Cross-Frame Attention, Wu et al. 2023 (Tune-A-Video's sparse-causal attention, as FateZero uses
it) and Khachatryan et al. 2023 (Text2Video-Zero): every frame's self-attention reads the keys and
values of anchor frames, so a clip's frames are edited alike.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Cross-Frame Attention", "attention", ("InvertEditCrossFrameAttention",),
    "Wu et al. 2023; Khachatryan et al. 2023",
    "first and previous frame (sparse-causal), every layer (min channels 0)", "N per frame; self-attention keys x anchors",
    ("Toy - Clip edit (cross-frame attention)", "SD1.5 - Clip edit (your checkpoint)"), None,
    "Every frame's self-attention reads anchor frames' keys and values (first and previous), composing with every "
    "SD attention editor, so a clip is edited consistently in one run.",
    settings={"InvertEditCrossFrameAttention.min_channels": 0})
