"""Prompt-to-Prompt on joint attention, Hertz et al. 2023, on Flux/SD3 joint attention (the pack's):
The edit's image tokens take the source's attention on the prompt's words (replace, refine,
reweight) and, in the first steps, on the image, in a pair whose source row follows a flow
inversion; local blend from the words' maps.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Prompt-to-Prompt on joint attention", "flow", ("InvertEditJointAttentionInject",), "Hertz et al. 2023, on Flux/SD3/Qwen-Image joint attention (the pack's)",
    "cross 0.8, self 0.4 of the steps; local blend on the edited words (blend words left empty: those that differ "
    "between the prompts), threshold 0.3 from 0.2 of the steps",
    "N to invert, N to sample a batch of 2 (source and edit; stock euler), one extra attention row while "
    "self-attention is injected (Qwen-Image: prompts of different token counts padded into one call, the padding masked "
    "out)", ("Flux - Prompt-to-Prompt edit", "SD3 - Prompt-to-Prompt edit",
                                         "Qwen-Image - Prompt-to-Prompt edit"), None,
    "The edit's image tokens take the source's attention on the prompt's words (replace, refine, reweight) and, "
    "in the first steps, on the image, in a pair whose source row follows a flow inversion; local blend from "
    "the words' maps.",
    settings={"InvertEditJointAttentionInject.cross_replace": 0.8,
              "InvertEditJointAttentionInject.self_replace": 0.4,
              "InvertEditJointAttentionInject.blend_threshold": 0.3,
              "InvertEditJointAttentionInject.blend_start": 0.2,
              "InvertEditJointAttentionInject.local_blend": True})
