"""A full fine-tune of the UNet (and the text encoder) inside the host, kept as a patch (DreamBooth Fine-Tune's).

Every weight and bias of the UNet gets a trainable difference, zero at the start, added by a
weight wrapper on a clone of the MODEL (as ``lora_training.py`` adds its LoRA adapters), so the
model is loaded, patched and conditioned as for a KSampler run and the frozen weights are never
written. The result is the host's "diff" patch format (``<module>.diff`` for a weight,
``<module>.diff_b`` for a bias: what ``comfy.lora.load_lora`` reads, so Save LoRA Weights writes it
and LoraLoader applies it), put on a clone of the input MODEL with ``add_patches``; Save Checkpoint
saves the patched model whole.

Memory: the differences, their gradients and AdamW's two moments, float32: 16 bytes per UNet
parameter on top of the model (SD1.5's 860 M: 12.8 GiB; SDXL's 2.6 G: 38.5 GiB); the node refuses
before training where the device has not that much free.
"""
from __future__ import annotations

import torch
from comfy.model_patcher import ModelPatcher

from .devices import free_memory
from .errors import NodeInputError
from .gradients import with_weight_copies
from .lora_training import TEXT_PREFIX
from .text_encoders import named_text_encoders

BYTES_PER_PARAMETER = 16   # float32 difference, gradient and AdamW's two moments


class WeightDiff(torch.nn.Module):
    """A weight wrapper adding a trainable difference to the host's weight (cast to it)."""

    def __init__(self, shape: torch.Size):
        super().__init__()
        self.diff = torch.nn.Parameter(torch.zeros(shape))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.diff.to(weight)


def _parameters(model: ModelPatcher) -> dict[str, torch.Tensor]:
    """The UNet's weights and biases by host key (``diffusion_model.<module>.weight``), every one of them:
    each sits in a host layer that takes weight wrappers."""
    found = {}
    for name, module in model.model.diffusion_model.named_modules():
        if hasattr(module, "weight_function"):
            for kind in ("weight", "bias"):
                tensor = getattr(module, kind, None)
                if isinstance(tensor, torch.Tensor):
                    found[f"diffusion_model.{name}.{kind}"] = tensor
    count = sum(1 for _ in model.model.diffusion_model.parameters())
    if len(found) != count:
        raise RuntimeError(f"full fine-tune: {count - len(found)} of the UNet's {count} parameters sit outside the "
                           f"host's patchable layers")
    return found


def check_memory(node: str, model: ModelPatcher, clip=None, instead: str = "") -> None:
    """Refuse a fine-tune the model's device has not the memory for, before anything is loaded
    (``clip``: its text encoders trained too; ``instead``: what the message offers besides a device
    with more memory)."""
    count = sum(p.numel() for p in model.model.diffusion_model.parameters())
    text = 0 if clip is None else sum(t.numel() for t in _text_parameters(clip, node).values())
    need = BYTES_PER_PARAMETER * (count + text)
    free = free_memory(model.load_device)
    if need > free:
        also = f" and the text encoder's {text / 1e6:.0f} M" if text else ""
        raise NodeInputError(node, f"input 'model': a full fine-tune of its {count / 1e6:.0f} M UNet parameters{also} "
                                   f"needs about {need / 2 ** 30:.1f} GiB (float32 differences, gradients and AdamW "
                                   f"moments) and {free / 2 ** 30:.1f} GiB are free on {model.load_device}; use "
                                   f"{instead + ', or ' if instead else ''}a device with more memory.")


def weight_diffs(model: ModelPatcher) -> dict[str, WeightDiff]:
    """One zero difference per UNet weight and bias, keyed by host key. Made outside inference mode."""
    with torch.inference_mode(False):
        return {key: WeightDiff(tensor.shape) for key, tensor in _parameters(model).items()}


# The host's CLIP adds its position table by reading the weight itself (``comfy/clip_model.py``:
# ``cast_to(self.position_embedding.weight, ...)``), past any weight wrapper: a difference there would
# neither train nor sample as the patch applies it. It stays frozen (the script trains it).
UNWRAPPED = ("embeddings.position_embedding",)


def _text_parameters(clip, node: str) -> dict[str, torch.Tensor]:
    """The text models' weights and biases (every ``<encoder>.transformer.text_model.…`` parameter:
    what diffusers' ``CLIPTextModel`` holds, the host's projection and ``UNWRAPPED`` left out), keyed
    ``text_encoders.<the CLIP's parameter name>``; each sits in a host layer that takes weight wrappers."""
    found = {}
    for prefix, encoder in named_text_encoders(clip, node):
        for name, module in encoder.transformer.text_model.named_modules():
            if name in UNWRAPPED:
                continue
            if hasattr(module, "weight_function"):
                for kind in ("weight", "bias"):
                    tensor = getattr(module, kind, None)
                    if isinstance(tensor, torch.Tensor):
                        found[f"{TEXT_PREFIX}{prefix}.transformer.text_model.{name}.{kind}"] = tensor
        count = sum(1 for name, _ in encoder.transformer.text_model.named_parameters()
                    if name.rsplit(".", 1)[0] not in UNWRAPPED)
        if count != sum(1 for key in found if key.startswith(f"{TEXT_PREFIX}{prefix}.")):
            raise RuntimeError(f"full fine-tune: some of the text encoder {prefix}'s {count} parameters sit outside "
                               f"the host's patchable layers")
    return found


def text_weight_diffs(clip, node: str) -> dict[str, WeightDiff]:
    """One zero difference per weight and bias of the CLIP's text models (``train_dreambooth.py
    --train_text_encoder``: every text-encoder parameter), keyed ``text_encoders.<parameter>``."""
    with torch.inference_mode(False):
        return {key: WeightDiff(tensor.shape) for key, tensor in _text_parameters(clip, node).items()}


def text_frozen(clip, diffs: dict[str, WeightDiff], node: str) -> list[torch.Tensor]:
    """The text encoder's frozen weights the differences add to, in their order."""
    weights = _text_parameters(clip, node)
    return [weights[key] for key in diffs]


def trainee(model: ModelPatcher, diffs: dict[str, WeightDiff]) -> ModelPatcher:
    """A clone of ``model`` that runs with ``diffs`` added to its weights, gradients flowing to them."""
    out = with_weight_copies(model)
    if out is model:
        out = model.clone()
    for key, diff in diffs.items():
        out.add_weight_wrapper(key, diff)
    return out


def trainable(diffs: dict[str, WeightDiff], device: torch.device) -> list[torch.nn.Parameter]:
    """The differences as parameters on ``device`` that take gradients (after the host's load, outside
    inference mode: see ``lora_training.trainable``)."""
    params = []
    for diff in diffs.values():
        w = diff.diff
        if w.is_inference() or w.device != device or not w.requires_grad:
            diff.diff = torch.nn.Parameter(w.detach().clone().to(device), requires_grad=True)
        params.append(diff.diff)
    return params


def frozen(model: ModelPatcher, diffs: dict[str, WeightDiff]) -> list[torch.Tensor]:
    """The frozen weights the differences add to, in their order (the model's own tensors, no copies)."""
    weights = _parameters(model)
    return [weights[key] for key in diffs]


def diff_state_dict(diffs: dict[str, WeightDiff]) -> dict[str, torch.Tensor]:
    """The differences in the host's "diff" patch format (``<module>.diff`` / ``<module>.diff_b``), in
    host memory as a LoRA file LoraLoader loaded: a patch the UNet's size would otherwise double the
    trained model's footprint on the device (the host moves patches there as it applies them)."""
    sd = {}
    for key, diff in diffs.items():
        module, kind = key.rsplit(".", 1)
        name = f"{module}.diff" if kind == "weight" else f"{module}.diff_b"
        sd[name] = diff.diff.detach().float().to("cpu", copy=True)   # sampling-path-ok: the output, once after training
    return sd
