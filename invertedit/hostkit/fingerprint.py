"""Fingerprints of a model and of conditioning, so an inversion used with another model,
prompt or schedule is caught instead of silently giving a wrong image."""
from __future__ import annotations

import hashlib
import json
import weakref

import torch
from comfy.model_patcher import ModelPatcher


_SAMPLED_KEYS = 12        # weight tensors sampled across the state dict
_SAMPLED_VALUES = 4096    # leading values hashed from each


def _digest(chunks) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c if isinstance(c, bytes) else str(c).encode())
    return h.hexdigest()[:16]


def _tensor_bytes(t: torch.Tensor, most: int = _SAMPLED_VALUES, rounded_to: torch.dtype | None = None) -> bytes:
    # A hash needs the values on the host: read once per model object, latent or prompt (when a node runs or a
    # run starts), never per step; a tensor already on the CPU is not copied.
    flat = t.detach().reshape(-1)[:most].cpu()  # sampling-path-ok: once per object hashed, never per step
    if rounded_to is not None:   # on the CPU: every device's cast rounds to nearest even; MPS has no float8
        flat = flat.to(rounded_to)
    return flat.to(torch.float32).numpy().tobytes()


# The hashes of a base model's weights and of a sampling object's schedule, computed once per
# object: reading tensors to hash them moves them to the CPU, so it is done the first time an
# object is seen (usually when the inversion is made), not at every run that checks it. The same
# object is the same model; the weights are hashed from the patcher's backup, so LoRA patches
# applied in place do not change them (those are hashed apart, every time).
_WEIGHTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_SCHEDULES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


#: The precisions the host loads a checkpoint's UNet in besides its own (``--bf16-unet``, ``--fp8_e4m3fn-unet``,
#: ``--fp8_e5m2-unet``, an fp8 checkpoint), with the fingerprint key of the weights rounded to each.
COARSE = {"weights.bf16": torch.bfloat16, "weights.fp8_e4m3fn": torch.float8_e4m3fn,
          "weights.fp8_e5m2": torch.float8_e5m2}


def stored_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a module holds, by the keys of its state dict (its own parameters and persistent
    buffers, and its children's), as they are stored: a quantised weight stays the host's or a loader's
    tensor (ComfyUI-GGUF's GGMLTensor), an offloaded one where it lies. Not the module's state dict, which
    a loader may fill with placeholders (ComfyUI-GGUF: empty tensors on the meta device for its quantised
    layers)."""
    out = {}
    for prefix, m in module.named_modules(remove_duplicate=False):
        dot = f"{prefix}." if prefix else ""
        for name, t in m._parameters.items():
            if t is not None:
                out[dot + name] = t
        for name, t in m._buffers.items():
            if t is not None and name not in m._non_persistent_buffers_set:
                out[dot + name] = t
    return out


def quantisation(t: torch.Tensor) -> str | None:
    """The name of the format ``t`` is stored in where it is a loader's quantised tensor, whose values are not the
    weights' (city96's ComfyUI-GGUF: a ``GGMLTensor`` of the blocks' bytes), else None (its F16 and F32 tensors
    hold the weights' values)."""
    kind = getattr(t, "tensor_type", None)
    if kind is None or t.dtype.is_floating_point:
        return None
    return str(getattr(kind, "name", kind))


def _weights_hashes(model: ModelPatcher) -> dict[str, str]:
    base = model.model
    if base not in _WEIGHTS:
        stored = stored_tensors(base)
        keys = sorted(k for k, v in stored.items() if v.numel() > 0 and not k.startswith("model_sampling"))
        picks = [keys[round(i * (len(keys) - 1) / (_SAMPLED_KEYS - 1))] for i in range(_SAMPLED_KEYS)] \
            if len(keys) > 1 else keys
        chunks = {key: [] for key in ("weights", *COARSE)}
        for k in dict.fromkeys(picks):
            backup = model.backup.get(k)
            w = backup.weight if backup is not None else stored[k]
            shape, quantised = tuple(w.shape), quantisation(w)   # a quantised tensor's shape is the weight's
            head = [k, shape] + ([quantised] if quantised is not None else [])
            if w.device.type == "meta":   # not loaded yet: its key and shape identify it
                for key in chunks:
                    chunks[key] += head + ["not loaded"]
                continue
            w = w.as_subclass(torch.Tensor)   # a loader's tensor as the bytes it stores, never dequantised
            values = w.detach().reshape(-1)[:_SAMPLED_VALUES].cpu()  # sampling-path-ok: one read, four hashes
            for key, rounded_to in (("weights", None), *COARSE.items()):
                chunks[key] += head + [_tensor_bytes(values, rounded_to=rounded_to)]
        _WEIGHTS[base] = {key: _digest(c + [len(keys)]) for key, c in chunks.items()}
    return _WEIGHTS[base]


def _schedule_hash(model_sampling) -> str:
    if not hasattr(model_sampling, "sigmas"):
        return "none"
    if model_sampling not in _SCHEDULES:
        _SCHEDULES[model_sampling] = _digest([_tensor_bytes(model_sampling.sigmas, most=10_000)])
    return _SCHEDULES[model_sampling]


def model_fingerprint(model: ModelPatcher) -> dict[str, str]:
    """``family``/``prediction``: what kind of model; ``weights``: a hash of sampled base
    weights (taken from the patcher's backup when LoRA patches are currently applied);
    ``weights.bf16``: the same hash of those weights rounded to bfloat16, which does not depend on
    the precision the host loaded the UNet in (float32 on a CPU, fp16 on a GPU, ``--bf16-unet``)
    when the checkpoint's weights are stored in fp16 or bf16 (most are; the Toy World Model's are),
    nor between float32 and bf16 for any checkpoint; ``weights.fp8_e4m3fn`` / ``weights.fp8_e5m2``: rounded
    to that float8 format, which agrees between a checkpoint's weights and the same weights loaded in
    it (``--fp8_e4m3fn-unet``, an fp8 checkpoint such as ComfyUI's flux1-dev-fp8 made from them);
    ``patches``: a hash of the weight patches (LoRA keys and strengths) on this patcher; ``schedule``: a
    hash of the noise schedule."""
    base = model.model
    hashes = _weights_hashes(model)
    patches = []
    for k in sorted(model.patches):
        for p in model.patches[k]:
            patches.append((k, round(float(p[0]), 6), round(float(p[2]), 6), type(p[1]).__name__))
    return {
        "family": type(base.model_config).__name__,
        "prediction": str(getattr(base.model_type, "name", base.model_type)),
        **hashes,
        "patches": _digest([json.dumps(patches)]) if patches else "none",
        "schedule": _schedule_hash(model.get_model_object("model_sampling")),
    }


def tensor_fingerprint(t: torch.Tensor) -> str:
    """A hash of a tensor's shape and leading values (a LATENT's samples)."""
    return _digest([tuple(t.shape), _tensor_bytes(t, most=1 << 20)])


def conditioning_fingerprint(conditioning: list) -> str:
    """A hash of a CONDITIONING's tensors (the prompt embedding and pooled output, an instruction editor's reference
    latents)."""
    chunks = []
    for emb, extra in conditioning:
        chunks += [tuple(emb.shape), _tensor_bytes(emb, most=1 << 20)]
        pooled = extra.get("pooled_output")
        if pooled is not None:
            chunks += [_tensor_bytes(pooled)]
        for ref in extra.get("reference_latents") or ():
            chunks += [tuple(ref.shape), _tensor_bytes(ref, most=1 << 20)]
    return _digest(chunks)


# What identifies the model something was made with (the "model." entries of a stamp); the weight
# patches (LoRA) only warn: a LoRA changes the picture, not what the stamp's object means.
IDENTITY = ("model.family", "model.prediction", "model.schedule", "model.weights")


def model_stamp(model: ModelPatcher) -> dict[str, str]:
    """The model part of an INVERSION's fingerprint, and of anything else the pack makes from a
    model (Imagic's optimised embedding): ``model_fingerprint`` under ``model.`` keys."""
    return {f"model.{k}": v for k, v in model_fingerprint(model).items()}


def stamp_differences(stamp: dict, model: ModelPatcher) -> tuple[list[str], dict[str, str]]:
    """The identity entries in which ``model`` differs from ``stamp`` (an entry the stamp lacks
    differs), and the model's own stamp. The same weights in another precision (made on a CPU in
    float32, used with a GPU's fp16, --bf16-unet or an fp8 UNet, or the reverse) do not differ."""
    actual = model_stamp(model)
    differ = [k for k in IDENTITY if stamp.get(k) != actual.get(k)]
    if differ == ["model.weights"] and any(stamp.get(f"model.{k}") == actual[f"model.{k}"] for k in COARSE):
        differ = []
    return differ, actual

