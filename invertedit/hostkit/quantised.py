"""Weights stored in a loader's quantised format (city96's ComfyUI-GGUF: a ``GGMLTensor`` holding the
blocks' bytes, dequantised in each layer's forward). The pack never reads such a weight's values (the
fingerprint hashes a few of its bytes) and does not train through it: ComfyUI-GGUF's layers apply the
host's LoRA patches but not its weight wrappers, which is how the pack's training nodes train (a LoRA or
a difference wrapped around each weight), so a run on them would learn nothing."""
from __future__ import annotations

import torch
from comfy.model_patcher import ModelPatcher

from .errors import NodeInputError
from .fingerprint import quantisation


def quantised_layers(model: ModelPatcher) -> dict[str, str]:
    """The denoiser's layers whose weight is stored quantised, with the format (``Q4_0``, ``Q8_0``, ...)."""
    found = {}
    for name, module in model.model.diffusion_model.named_modules():
        weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        kind = quantisation(weight) if isinstance(weight, torch.Tensor) else None
        if kind is not None:
            found[name] = kind
    return found


def check_trainable(node: str, model: ModelPatcher) -> None:
    """Refuse to train through a model whose weights are stored quantised (module docstring)."""
    layers = quantised_layers(model)
    if layers:
        kinds = ", ".join(sorted(set(layers.values())))
        raise NodeInputError(node, f"input 'model' holds quantised weights ({len(layers)} layers in {kinds}: a GGUF file "
                                   f"from Unet Loader (GGUF)); {node} trains through the model's weights, which those "
                                   f"layers do not let it do. Load the same model from its safetensors file (Load "
                                   f"Checkpoint or Load Diffusion Model; fp16, bf16 and fp8 weights train) and use the "
                                   f"GGUF file for sampling: what it learns (a LoRA or a weight patch) applies to it.")
