"""Runs ConsistEdit's own Flux editor (``zxYin/ConsistEdit_Code``'s ``regiter_attention_editor_diffusers_flux_mask``:
the mask pass, ``GENERATE_MASK``, then the edit with the mask read back) on a diffusers ``FluxTransformer2DModel``
carrying the tiny host Flux's weights, for ``tests/host/test_consist_edit.py``. Never imported by the pack.

    PYTHONPATH=<diffusers 0.34>:<their checkout> python consist_edit_flux_runner.py JOB OUT

Their requirements pin diffusers 0.34.0, whose Flux blocks hold an ``Attention`` (their ``register_editor`` patches
modules of that class name; diffusers 0.35+ names Flux's ``FluxAttention`` and their editor would patch nothing), so
this runs in a subprocess with diffusers 0.34 first on the path.

JOB (``torch.save``): ``state_dict``, ``config`` (the transformer); ``trajectory`` ``[N + 1, 1, 16, h, w]`` (the
pack's inversion, sampling order, the model's space); ``sigmas`` (N + 1); ``source`` / ``target`` (T5 embeddings
``[1, 512, d]``, pooled ``[1, d']``); ``guidance`` ([source, target]); ``positions``; ``alpha``; ``mask_path``.
OUT: ``{"edit": [1, 16, h, w], "mask": [h/2, w/2] (1: kept)}``.

Adapters, as ``consist_edit_runner.py``'s: no pipeline (their ``register_flux_solver`` loop encodes prompts and steps
a scheduler); the transformer takes the host's embeddings, and the loop is driven as the pack's pair runs it: their
mask pass at each point of the inversion's trajectory (``GENERATE_MASK``, the source alone at the inversion's
guidance, ``SAVE_MASK_TRIGGER`` at the last call), then the pair (the source row the inversion's state at each step,
the edit row stepped with Euler), ``CUR_STEP`` set per step as their loop counts it. Float32 on the CPU.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image


def pack(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, d = x.shape
    return x.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, d // 4, h, w)


@torch.no_grad()
def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    from diffusers.models.transformers.transformer_flux import FluxTransformer2DModel
    control = importlib.import_module("consistEdit.attention_control")
    gv = importlib.import_module("consistEdit.global_var").GlobalVars
    takes = inspect.signature(FluxTransformer2DModel.__init__).parameters
    tr = FluxTransformer2DModel(**{k: v for k, v in job["config"].items() if k in takes}).float().eval()
    missing, unexpected = tr.load_state_dict(job["state_dict"], strict=True)
    assert not missing and not unexpected
    control.regiter_attention_editor_diffusers_flux_mask(SimpleNamespace(transformer=tr), use_old_version=False)
    assert gv.NUM_ATT_LAYERS > 0, "their editor patched no block (a diffusers other than 0.34?)"

    traj, sigmas = job["trajectory"], job["sigmas"]
    steps = len(sigmas) - 1
    (src, src_pooled), (tgt, tgt_pooled) = job["source"], job["target"]
    h, w = traj.shape[-2:]
    img_ids = torch.zeros(h // 2, w // 2, 3)
    img_ids[..., 1] = torch.arange(h // 2)[:, None]
    img_ids[..., 2] = torch.arange(w // 2)[None, :]
    img_ids, txt_ids = img_ids.reshape(-1, 3), torch.zeros(src.shape[1], 3)
    g_src, g_tgt = job["guidance"]

    gv.reset_global_vars()
    gv.TEXT_LENGTH, gv.HEIGHT, gv.WIDTH = src.shape[1], h // 2, w // 2
    gv.TOKEN_IDS, gv.MASK_OUTPUT_PATH = list(job["positions"]), job["mask_path"]
    gv.TEST_QK_STEP = int(steps * job["alpha"])
    gv.GENERATE_MASK = True
    for n in range(steps + 1):   # every point of the inversion's trajectory
        gv.SAVE_MASK_TRIGGER = n == steps
        tr(hidden_states=pack(traj[n]), encoder_hidden_states=src, pooled_projections=src_pooled,
           timestep=sigmas[n].reshape(1), img_ids=img_ids, txt_ids=txt_ids, guidance=torch.tensor([g_src]))
    gv.reset_global_vars()
    gv.GENERATE_MASK = False
    x = pack(traj[0])
    for j in range(steps):
        gv.CUR_STEP = j
        v = tr(hidden_states=torch.cat((pack(traj[j]), x)), encoder_hidden_states=torch.cat((src, tgt)),
               pooled_projections=torch.cat((src_pooled, tgt_pooled)), timestep=sigmas[j].reshape(1).expand(2),
               img_ids=img_ids, txt_ids=txt_ids, guidance=torch.tensor([g_src, g_tgt]))[0]
        x = x + (sigmas[j + 1] - sigmas[j]) * v[1:]
    mask = torch.from_numpy(np.array(Image.open(job["mask_path"]))).float() / 255
    torch.save({"edit": unpack(x, h, w), "mask": mask}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
