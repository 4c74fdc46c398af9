"""LoRAs and ControlNets in the graph (issue 77): editors of each family sampled with the host's LoRA loader
between the model loader and the editor, and a ControlNet on their prompts, as artists run them.

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
weights (its zero convolutions and projections too, so that it acts), and for SD3 the host's MMDiT ControlNet of the
tiny SD3's config written in diffusers' key layout, the only one the host reads for SD3 (``in_diffusers_layout``:
the host's own key map read backwards); each loaded by the stock ControlNet Loader (the host's detection answered
with the model's own config, as the quantised lane answers it: ``test_quantised_lane.tiny_detection``; it misreads
a UNet whose first level has no ResBlock and assumes Flux's 128-wide heads) and applied to every prompt, with the
source image as the hint, in the graph that has the LoRA: by the stock Apply ControlNet, and for SD3, whose
ControlNet takes its hint as a latent, by Apply ControlNet (Advanced) with the workflow's VAE. The edit must change
again (the control reaches the editor's model calls, through its own patches and wrappers).
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

LANE = ("Toy - Prompt-to-Prompt replace", "Toy - Plug-and-Play edit", "Toy - LEDITS++ edit", "Toy - Null-text inversion and edit",
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


def sd3_controlnet_of(model):
    """An SD3 ControlNet (the host's ``comfy.cldm.mmdit.ControlNet``: the MMDiT's joint blocks, a latent hint's patch
    embedding, a projection per block) of ``model``'s config, in float32 on the CPU, its weights unset."""
    import comfy.cldm.mmdit
    import comfy.ops

    config = {k: v for k, v in model.model.model_config.unet_config.items()
              if k not in ("dtype", "device", "operations", "num_blocks")}
    blocks = len(model.model.diffusion_model.joint_blocks)
    return comfy.cldm.mmdit.ControlNet(num_blocks=blocks, operations=comfy.ops.manual_cast, device="cpu",
                                       dtype=torch.float32, **config)


def in_diffusers_layout(sd: dict[str, torch.Tensor], depth: int, blocks: int) -> dict[str, torch.Tensor]:
    """An SD3 ControlNet's ldm state dict in diffusers' key layout, the one the host's loader reads
    (``convert_diffusers_mmdit``): the host's own key map (``comfy.utils.mmdit_to_diffusers``) read backwards, each
    diffusers tensor the slice of the ldm one it fills (its functions swap halves, their own inverses); the
    ControlNet's own keys (``controlnet_blocks``, ``pos_embed_input``) as they are."""
    import comfy.utils

    out = {}
    for key, to in comfy.utils.mmdit_to_diffusers({"depth": depth, "num_blocks": blocks}).items():
        ldm = to if isinstance(to, str) else to[0]
        if ldm not in sd:
            continue
        value = sd[ldm]
        if not isinstance(to, str):
            if to[1] is not None:
                value = value.narrow(*to[1])
            if len(to) > 2:
                value = to[2](value)
        out[key] = value.clone()
    out.update({k: v for k, v in sd.items() if k.startswith(("controlnet_blocks.", "pos_embed_input."))})
    return out


def denoiser_kind(model) -> str:
    """"flux", "sd3" or "unet": the host's denoiser class of ``model``."""
    from comfy.ldm.flux.model import Flux
    from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

    net = model.model.diffusion_model
    return "flux" if isinstance(net, Flux) else "sd3" if isinstance(net, MMDiT) else "unet"


def draw_controlnet(model, seed: int = 0) -> dict[str, torch.Tensor]:
    """A ControlNet of ``model`` with random weights (its zero convolutions or projections too, so that it acts): for
    a UNet ``controlnet_of(model)`` in the ldm format (``control_model.*``), for Flux ``flux_controlnet_of(model)`` in
    the XLabs format the host's loader recognises (``controlnet_blocks.*`` beside the blocks' own keys)."""
    g = torch.Generator().manual_seed(seed)
    image_model = denoiser_kind(model)
    module, prefix = {"flux": (flux_controlnet_of, ""), "sd3": (sd3_controlnet_of, "")}.get(
        image_model, (controlnet_of, "control_model."))
    module = module(model)
    sd = {f"{prefix}{k}": torch.randn(v.shape, generator=g) * 0.05 if v.ndim > 1 else torch.zeros(v.shape)
          for k, v in module.state_dict().items()}
    if image_model == "sd3":
        sd = in_diffusers_layout(sd, model.model.model_config.unet_config["depth"], len(module.joint_blocks))
    return sd


# Nodes that take gradients through the model refuse a ControlNet's prompt (``gradients.check_no_control``: the
# host's UNet adds its residuals in place); they keep the prompt before Apply ControlNet, as their tooltip says
GRADIENT_NODES = ("InvertEditNullTextOptimize",)


def with_controlnet(prompt: dict, file: str, latent_hint: bool = False) -> dict:
    """``prompt`` with every CLIP Text Encode's CONDITIONING through an Apply ControlNet of ``file`` (but into the
    ``GRADIENT_NODES``), the hint the image its VAE Encode encodes. ``latent_hint``: a ControlNet that takes its hint
    as a latent (SD3's), through Apply ControlNet (Advanced) with the workflow's VAE, the prompt as both its
    positive and negative and its positive output taken."""
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
        if latent_hint:
            prompt[f"cn_{text}"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
                "positive": [text, 0], "negative": [text, 0], "control_net": ["cn_loader", 0], "image": image,
                "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, "vae": encode[0]["inputs"]["vae"]}}
        else:
            prompt[f"cn_{text}"] = {"class_type": "ControlNetApply", "inputs": {
                "conditioning": [text, 0], "control_net": ["cn_loader", 0], "image": image, "strength": 1.0}}
    return prompt


@pytest.mark.parametrize("name", LANE)
def test_editor_with_a_lora_in_the_graph(name, host, runner, watch, monkeypatch):
    import comfy.lora
    import comfy.model_detection
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
    # every family: a ControlNet too
    monkeypatch.setattr(node, "execute", classmethod(original))   # the loader as it was
    controlnet = draw_controlnet(model)
    cn_file = f"invertedit-test-cn-{name.replace(' ', '_')}.safetensors"
    save_file(controlnet, folder_paths.get_folder_paths("controlnet")[0] + "/" + cn_file)
    config = {k: v for k, v in model.model.model_config.unet_config.items()
              if k not in ("dtype", "device", "operations")}   # what detection finds
    known = {_signature(controlnet): config}
    if denoiser_kind(model) == "sd3":   # the host detects on the ldm keys it converts the file's to, and
        config.pop("num_blocks", None)   # passes the blocks it counts beside the config (SD3's detection gives none)
        known[_signature(comfy.model_detection.convert_diffusers_mmdit(dict(controlnet), ""))] = config
    with tiny_detection(known):
        both, problems, _ = _run(with_controlnet(model_from(lane_prompt(path, host, runner), "lora", lora_node),
                                                 cn_file, latent_hint=denoiser_kind(model) == "sd3"),
                                 host, runner, watch)
    assert not problems, problems
    controlled = max(float(np.abs(b - d).max()) for key in in_graph for b, d in zip(in_graph[key], both[key]))
    report += f"; with the ControlNet too, a pixel moved by {controlled:.0f}"
    assert controlled >= CHANGED_MIN, "the ControlNet left the edit as it was"
    print(report)
