"""LoRAs in the graph (issue 77): editors of each family sampled with the host's LoRA loader between the
model loader and the editor, as artists run them.

A LoRA file is drawn for the workflow's built-in model (rank 4 on every attention projection the host's
key map knows, in the host's format: ``<module>.lora_up.weight`` / ``lora_down`` / ``alpha``), written to the
host's first LoRA folder (a temporary one under the tests) and loaded by the stock Load LoRA (model only) node
on the built-in loader's MODEL; every input that took that MODEL takes the LoRA'd one. The workflow runs
without the LoRA, with it, and with the same LoRA's weights merged into the model beforehand (the host's own
patching, ``ModelPatcher.patch_model``, on a clone; what a checkpoint with the LoRA baked in gives): the edit
with the LoRA in the graph must differ from the one without (the LoRA reaches the editor's model calls), and
match the merged model's (the editor's patches compose with the LoRA's weight patches as with plain weights).
What is not here: ControlNets in the same graph (the host's ControlNet loaders detect a real model's config
from its weights, which the tiny models do not have; not built on this machine).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import test_half_precision as half_lane
from test_half_precision import _run, lane_prompt, psnr
from test_workflows import WORKFLOWS

runner, watch = half_lane.runner, half_lane.watch   # the half-precision lane's fixtures

LANE = ("p2p_replace_edit", "plug_and_play_edit", "ledits_edit", "null_text_inversion_edit",
        "Flux - FlowEdit", "Flux - KV-Edit", "Flux - RF-Solver-Edit", "SD3 - Prompt-to-Prompt edit")
RANK = 4
# The edit with the LoRA differs from the one without by at least this much somewhere (of 255 levels): a visible
# change (KV-Edit keeps the unmasked picture, so the change is local: measured 2026-11-29, 22-48 dB, a pixel moved
# by 43 or more in every workflow)
CHANGED_MIN = 32.0
MERGED_MIN = 45.0    # PSNR (dB) of the edit with the LoRA in the graph to the merged model's: at least this
PROJECTIONS = (".to_q", ".to_k", ".to_v", ".to_out.0", ".qkv", ".proj")


def draw_lora(model, seed: int = 0, scale: float = 3.0) -> dict[str, torch.Tensor]:
    """A rank-``RANK`` LoRA on the attention projections of ``model``'s diffusion model, in the host's format; each
    adapter's change is about ``scale`` times its weight's spread."""
    g = torch.Generator().manual_seed(seed)
    lora = {}
    for name, module in model.model.diffusion_model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(PROJECTIONS):
            out_f, in_f = module.weight.shape
            spread = float(module.weight.float().std())
            key = f"diffusion_model.{name}"
            lora[f"{key}.lora_up.weight"] = torch.randn(out_f, RANK, generator=g) * (scale * spread / RANK ** 0.5)
            lora[f"{key}.lora_down.weight"] = torch.randn(RANK, in_f, generator=g) / in_f ** 0.5
            lora[f"{key}.alpha"] = torch.tensor(float(RANK))
    assert lora, "no attention projection found"
    return lora


def _builtin(prompt: dict) -> str:
    loaders = [k for k, v in prompt.items() if v["class_type"] in ("InvertEditToyModel", "InvertEditDemoModel")]
    assert len(loaders) == 1, loaders
    return loaders[0]


def with_node(prompt: dict, key: str, node: dict) -> dict:
    """``prompt`` with ``node`` (taking the built-in loader's MODEL) in place of that MODEL for every other input."""
    loader = _builtin(prompt)
    for other in prompt.values():
        for name, value in other["inputs"].items():
            if value == [loader, 0]:
                other["inputs"][name] = [key, 0]
    prompt[key] = node
    return prompt


@pytest.mark.parametrize("name", LANE)
def test_editor_with_a_lora_in_the_graph(name, host, runner, watch, monkeypatch):
    import comfy.lora
    import folder_paths

    path = WORKFLOWS / f"{name}.json"
    prompt = lane_prompt(path, host, runner)
    loader = prompt[_builtin(prompt)]
    node = host.nodes.NODE_CLASS_MAPPINGS[loader["class_type"]]
    model = node.execute(**loader["inputs"]).args[0]
    lora = draw_lora(model)
    file = f"invertedit-test-{name.replace(' ', '_')}.safetensors"
    save_file(lora, str(folder_paths.get_folder_paths("loras")[0] + "/" + file))

    plain, problems, _ = _run(lane_prompt(path, host, runner), host, runner, watch)
    assert not problems, problems
    lora_node = {"class_type": "LoraLoaderModelOnly",
                 "inputs": {"model": [_builtin(prompt), 0], "lora_name": file, "strength_model": 1.0}}
    in_graph, problems, _ = _run(with_node(lane_prompt(path, host, runner), "lora", lora_node), host, runner, watch)
    assert not problems, problems

    # The merged model: the built-in loader's MODEL with the LoRA's weights patched in (the host's patch_model)
    # before any node sees it, so the editors' patches meet plain weights that hold the LoRA.
    original = node.execute.__func__

    def merged(cls, *args, **kwargs):
        out = original(cls, *args, **kwargs)
        m = out.args[0]
        patched = m.clone()
        patched.add_patches(comfy.lora.load_lora(lora, comfy.lora.model_lora_keys_unet(m.model, {}), log_missing=False))
        patched.patch_model(force_patch_weights=True)   # the shared weights now hold the LoRA; the loader's are fresh
        plain_patcher = type(m)(m.model, load_device=m.load_device, offload_device=m.offload_device)
        return type(out)(plain_patcher, *out.args[1:])

    monkeypatch.setattr(node, "execute", classmethod(merged))
    baked, problems, _ = _run(lane_prompt(path, host, runner), host, runner, watch)
    assert not problems, problems

    changed, moved, same = math.inf, 0.0, math.inf
    for key in plain:
        for a, b, c in zip(plain[key], in_graph[key], baked[key]):
            changed, moved = min(changed, psnr(a, b)), max(moved, float(np.abs(a - b).max()))
            same = min(same, psnr(b, c))
    print(f"{name}: with the LoRA {changed:.1f} dB from without it (a pixel moved by {moved:.0f}), {same:.1f} dB from "
          f"the merged model")
    assert moved >= CHANGED_MIN, f"the LoRA left the edit as it was (no pixel moved by {CHANGED_MIN:.0f} or more)"
    assert same >= MERGED_MIN, f"the LoRA in the graph differs from the merged model ({same:.1f} dB < {MERGED_MIN})"
