"""Runs ConsistEdit's own attention control (``zxYin/ConsistEdit_Code``'s ``consistEdit/attention_control.py``:
``regiter_attention_editor_diffusers_sd3_mask_real``, their real-image SD3 editor, with their ``GlobalVars`` and
``AttentionMapController``) on a diffusers ``SD3Transformer2DModel`` carrying the tiny host model's weights, for the
pack's parity test (``tests/host/test_consist_edit.py``). Never imported by the pack.

Their module is imported from a copy of their repository, unchanged. The adapters, none changing what their code
computes:
- no pipeline: their ``pipe.invert`` / ``pipe.denoise`` (``consistEdit/solver.py``) encode prompts with SD3's text
  encoders and step their schedulers; here the host's embeddings are passed to the transformer and the loop is
  driven as the pack's pair runs it, setting the ``GlobalVars`` their loop sets (``IS_INVERSE``, ``TOTAL_STEPS``,
  ``CUR_STEP``, ``SAVE_MASK_TRIGGER`` at the last call);
- their inversion pass (``IS_INVERSE``: queries and keys saved per step, the maps accumulated, the mask saved as a
  PNG at the last call's last block) is run at each point of the pack's inversion trajectory, ``t = 0`` first as
  their Uni-Inv goes; ``CUR_STEP`` is set so that a state's queries and keys are saved under the sampling step that
  samples from it (their ``save_step_idx``);
- their edit pass (the pair, source then edit, guidance 1 as their real-image script) reads them back; the source
  row is the inversion's state at each step (the pack's ``SourceRow``), the edit row steps with Euler.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import torch


def load(checkout: Path):
    """Their ``attention_control`` and ``global_var`` modules, imported from ``checkout`` (fresh)."""
    sys.path.insert(0, str(checkout))
    try:
        for name in [m for m in sys.modules if m == "consistEdit" or m.startswith("consistEdit.")]:
            del sys.modules[name]
        control = importlib.import_module("consistEdit.attention_control")
        gv = importlib.import_module("consistEdit.global_var")
    finally:
        sys.path.remove(str(checkout))
    return control, gv.GlobalVars


@torch.no_grad()
def run(checkout: Path, transformer, trajectory: torch.Tensor, sigmas: torch.Tensor, source: tuple, target: tuple,
        positions: list[int], grid: tuple[int, int], alpha: float, mask_path: Path) -> dict:
    """Their mask pass and edit on the pack's inversion ``trajectory`` (``[N + 1, 1, C, H, W]``, sampling order, the
    model's space) over ``sigmas`` (N + 1, descending): ``{"edit": [1, C, H, W], "mask": [rows, cols] (1: kept)}``."""
    control, gv = load(checkout)
    control.regiter_attention_editor_diffusers_sd3_mask_real(SimpleNamespace(transformer=transformer),
                                                             use_old_version=False)
    (src, src_pooled), (tgt, tgt_pooled) = source, target
    steps = len(sigmas) - 1
    gv.reset_global_vars()
    gv.IS_INVERSE, gv.TOTAL_STEPS = True, steps
    gv.TEXT_LENGTH, gv.HEIGHT, gv.WIDTH = src.shape[1], grid[0], grid[1]
    gv.TOKEN_IDS, gv.MASK_OUTPUT_PATH = list(positions), str(mask_path)
    gv.TEST_QK_STEP = int(steps * alpha)
    gv.MAP_SAVER = {}
    for n, j in enumerate(range(steps, -1, -1)):   # their inversion: t = 0 first, up the schedule
        gv.CUR_STEP = steps - 1 - j                 # their save_step_idx = TOTAL_STEPS - CUR_STEP - 1 = j
        gv.SAVE_MASK_TRIGGER = n == steps
        transformer(hidden_states=trajectory[j], encoder_hidden_states=src, pooled_projections=src_pooled,
                    timestep=(1000 * sigmas[j]).reshape(1))
    gv.reset_global_vars()                          # as their denoise starts
    gv.IS_INVERSE, gv.TOTAL_STEPS = False, steps
    x = trajectory[0].clone()
    for j in range(steps):
        gv.CUR_STEP = j
        pair = torch.cat((trajectory[j], x))
        v = transformer(hidden_states=pair, encoder_hidden_states=torch.cat((src, tgt)),
                        pooled_projections=torch.cat((src_pooled, tgt_pooled)),
                        timestep=(1000 * sigmas[j]).reshape(1).expand(2))[0]
        x = x + (sigmas[j + 1] - sigmas[j]) * v[1:]
    from PIL import Image
    import numpy as np
    mask = torch.from_numpy(np.array(Image.open(mask_path))).float() / 255
    return {"edit": x, "mask": mask}
