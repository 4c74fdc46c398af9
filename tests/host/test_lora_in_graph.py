"""LoRAs and ControlNets in the graph (issue 77): editors of each family sampled with the host's LoRA loader
between the model loader and the editor, and (SD1.5, SDXL and Flux) a ControlNet on their prompts, as artists run them.

A LoRA file is drawn for the workflow's built-in model (rank 4 on every attention projection the host's
key map knows, in the host's format: ``<module>.lora_up.weight`` / ``lora_down`` / ``alpha``), written to the
host's first LoRA folder (a temporary one under the tests) and loaded by the stock Load LoRA (model only) node
on the built-in loader's MODEL; every input that took that MODEL takes the LoRA'd one. The workflow runs
without the LoRA, with it, and with the same LoRA's weights merged into the model beforehand (the host's own
patching, ``ModelPatcher.patch_model``, on a clone; what a checkpoint with the LoRA baked in gives): the edit
with the LoRA in the graph must differ from the one without (the LoRA reaches the editor's model calls), and
match the merged model's (the editor's patches compose with the LoRA's weight patches as with plain weights).

The ControlNet: for the SD workflows (the toy UNet) a ControlNet of the UNet's config in the ldm format
(``control_model.*``), for the Flux ones (the toy flow DiT) an XLabs-format Flux ControlNet (the host's
``ControlNetFlux`` of the DiT's config: its blocks, the image hint block, a projection per block), each with random
weights (its zero convolutions and projections too, so that it acts), loaded by the stock ControlNet Loader (the
host's detection answered with the model's own config, as the quantised lane answers it:
``test_quantised_lane.tiny_detection``; it misreads a UNet whose first level has no ResBlock and assumes Flux's
128-wide heads) and applied by the stock Apply ControlNet to every prompt, with the source image as the hint, in
the graph that has the LoRA. The edit must change again (the control reaches the editor's model calls, through its
own patches and wrappers). SD3's ControlNets are not built here: the host reads them in diffusers' key layout only
(``convert_diffusers_mmdit``), which the pack's tiny MMDiT is not written in.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import test_half_precision as half_lane
from test_half_precision import _run, builtin_loader, lane_prompt, model_from, psnr
from test_quantised_lane import _signature, tiny_detection
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


def controlnet_of(model):
    """A ControlNet module of ``model``'s UNet config (a copy of its encoder, the hint block, the zero convolutions)
    in float32 on the CPU, its weights as the host's layers leave them (unset)."""
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in model.model.model_config.unet_config.items()
              if k not in ("out_channels", "dtype", "device", "operations")}
    return comfy.cldm.cldm.ControlNet(hint_channels=3, operations=comfy.ops.manual_cast, device="cpu",
                                      dtype=torch.float32, **config)


def flux_controlnet_of(model):
    """An XLabs-format Flux ControlNet (the host's ``ControlNetFlux``: a copy of the DiT's blocks, the image hint
    block, a projection per block) of ``model``'s config, in float32 on the CPU, its weights unset."""
    import comfy.ldm.flux.controlnet
    import comfy.ops

    config = {k: v for k, v in model.model.model_config.unet_config.items() if k not in ("dtype", "device", "operations")}
    return comfy.ldm.flux.controlnet.ControlNetFlux(operations=comfy.ops.manual_cast, device="cpu", dtype=torch.float32,
                                                    **config)


def draw_controlnet(model, seed: int = 0) -> dict[str, torch.Tensor]:
    """A ControlNet of ``model`` with random weights (its zero convolutions or projections too, so that it acts): for
    a UNet ``controlnet_of(model)`` in the ldm format (``control_model.*``), for Flux ``flux_controlnet_of(model)`` in
    the XLabs format the host's loader recognises (``controlnet_blocks.*`` beside the blocks' own keys)."""
    g = torch.Generator().manual_seed(seed)
    unet = model.model.model_config.unet_config.get("image_model") != "flux"
    module, prefix = (controlnet_of(model), "control_model.") if unet else (flux_controlnet_of(model), "")
    return {f"{prefix}{k}": torch.randn(v.shape, generator=g) * 0.05 if v.ndim > 1 else torch.zeros(v.shape)
            for k, v in module.state_dict().items()}


# Nodes that take gradients through the model refuse a ControlNet's prompt (``gradients.check_no_control``: the
# host's UNet adds its residuals in place); they keep the prompt before Apply ControlNet, as their tooltip says
GRADIENT_NODES = ("InvertEditNullTextOptimize",)


def with_controlnet(prompt: dict, file: str) -> dict:
    """``prompt`` with every CLIP Text Encode's CONDITIONING through an Apply ControlNet of ``file`` (but into the
    ``GRADIENT_NODES``), the hint the image its VAE Encode encodes."""
    encode = [v for v in prompt.values() if v["class_type"] == "VAEEncode"]
    assert encode, "no VAE Encode: no source image to give the ControlNet"
    image = encode[0]["inputs"]["pixels"]
    prompt["cn_loader"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": file}}
    texts = [k for k, v in prompt.items() if v["class_type"] == "CLIPTextEncode"]
    for text in texts:
        for other in prompt.values():
            for name, value in other["inputs"].items():
                if value == [text, 0] and other["class_type"] not in GRADIENT_NODES:
                    other["inputs"][name] = [f"cn_{text}", 0]
        prompt[f"cn_{text}"] = {"class_type": "ControlNetApply", "inputs": {
            "conditioning": [text, 0], "control_net": ["cn_loader", 0], "image": image, "strength": 1.0}}
    return prompt


@pytest.mark.parametrize("name", LANE)
def test_editor_with_a_lora_in_the_graph(name, host, runner, watch, monkeypatch):
    import comfy.lora
    import folder_paths

    path = WORKFLOWS / f"{name}.json"
    prompt = lane_prompt(path, host, runner)
    loader = prompt[builtin_loader(prompt)]
    node = host.nodes.NODE_CLASS_MAPPINGS[loader["class_type"]]
    model = node.execute(**loader["inputs"]).args[0]
    lora = draw_lora(model)
    file = f"invertedit-test-{name.replace(' ', '_')}.safetensors"
    save_file(lora, str(folder_paths.get_folder_paths("loras")[0] + "/" + file))

    plain, problems, _ = _run(lane_prompt(path, host, runner), host, runner, watch)
    assert not problems, problems
    lora_node = {"class_type": "LoraLoaderModelOnly",
                 "inputs": {"model": [builtin_loader(prompt), 0], "lora_name": file, "strength_model": 1.0}}
    in_graph, problems, _ = _run(model_from(lane_prompt(path, host, runner), "lora", lora_node), host, runner, watch)
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
    report = (f"{name}: with the LoRA {changed:.1f} dB from without it (a pixel moved by {moved:.0f}), {same:.1f} dB "
              f"from the merged model")
    assert moved >= CHANGED_MIN, f"the LoRA left the edit as it was (no pixel moved by {CHANGED_MIN:.0f} or more)"
    assert same >= MERGED_MIN, f"the LoRA in the graph differs from the merged model ({same:.1f} dB < {MERGED_MIN})"
    if model.model.model_config.unet_config.get("image_model") != "sd3":   # SD1.5, SDXL, Flux: a ControlNet too
        monkeypatch.setattr(node, "execute", classmethod(original))   # the loader as it was
        controlnet = draw_controlnet(model)
        cn_file = f"invertedit-test-cn-{name.replace(' ', '_')}.safetensors"
        save_file(controlnet, folder_paths.get_folder_paths("controlnet")[0] + "/" + cn_file)
        known = {_signature(controlnet): {k: v for k, v in model.model.model_config.unet_config.items()
                                          if k not in ("dtype", "device", "operations")}}   # what detection finds
        with tiny_detection(known):
            both, problems, _ = _run(with_controlnet(model_from(lane_prompt(path, host, runner), "lora", lora_node),
                                                     cn_file), host, runner, watch)
        assert not problems, problems
        controlled = max(float(np.abs(b - d).max()) for key in in_graph for b, d in zip(in_graph[key], both[key]))
        report += f"; with the ControlNet too, a pixel moved by {controlled:.0f}"
        assert controlled >= CHANGED_MIN, "the ControlNet left the edit as it was"
    print(report)
