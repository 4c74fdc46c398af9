"""LoRA training inside the host, shared by Imagic Fine-Tune and DreamBooth LoRA.

The adapters are the host's own training adapter (``comfy.weight_adapter.lora.LoraDiff``, as
``comfy_extras/nodes_train.py`` uses it), added as weight wrappers on a clone of the MODEL, so
the model is loaded, patched and conditioned as for a KSampler run. The result is written in the
host's LoRA format (``<module>.lora_up.weight``, ``<module>.lora_down.weight``, ``<module>.alpha``:
what Train LoRA outputs, Save LoRA Weights writes and LoraLoader / Load LoRA Model read) and put
on a clone of the input MODEL with ``add_patches`` (``comfy.lora``), as LoraLoader does: stock
samplers, further LoRAs and ControlNets work on it.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import comfy.lora
import comfy.lora_convert
import torch
from comfy.model_patcher import ModelPatcher
from comfy.weight_adapter.lora import LoraDiff

from .errors import NodeInputError
from .gradients import with_weight_copies
from .text_encoders import named_text_encoders

# The attention projections diffusers' DreamBooth LoRA script adapts (peft ``target_modules``
# to_q, to_k, to_v, to_out.0; add_k_proj / add_v_proj exist in no SD UNet).
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


def _targets(model: ModelPatcher, attention_only: bool) -> list[tuple[str, torch.Tensor]]:
    found = []
    for name, module in model.model.diffusion_model.named_modules():
        weight = getattr(module, "weight", None)
        if not hasattr(module, "weight_function") or weight is None or weight.ndim < 2:
            continue
        if attention_only and not any(name.endswith(f".{p}") for p in ATTENTION_PROJECTIONS):
            continue
        found.append((f"diffusion_model.{name}", weight))
    return found


def training_sigmas(model: ModelPatcher) -> torch.Tensor:
    """The model's training noise levels indexed by DDPM timestep (ascending; 1000 for SD)."""
    return model.get_model_object("model_sampling").sigmas.detach().float().cpu().clone()


def lora_adapters(model: ModelPatcher, rank: int, seed: int, attention_only: bool = False,
                  generator: Optional[torch.Generator] = None) -> dict[str, LoraDiff]:
    """One host ``LoraDiff`` per adapted UNet weight, keyed by module name (``diffusion_model.…``).

    ``attention_only`` False (Imagic): every weight of two or more dimensions (linear and
    convolution layers), up Kaiming-uniform from ``seed`` (as the host's ``create_train`` draws
    it), down zero, alpha 1 (scale 1 / rank, the host's Train LoRA). True (DreamBooth): the
    attention projections only, as diffusers' ``train_dreambooth_lora.py`` (peft's "gaussian"
    init: down normal with std 1 / rank, up zero; alpha = rank, scale 1). Either starts as the
    identity. ``generator``: the draws' generator (default: one seeded with ``seed``), for a caller
    that draws more adapters after these (``text_lora_adapters``). Made outside inference mode."""
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    targets = _targets(model, attention_only)
    if attention_only:
        return _gaussian_adapters(targets, rank, g)
    out: dict[str, LoraDiff] = {}
    with torch.inference_mode(False), torch.random.fork_rng(devices=[]):   # LoraDiff's layers draw an init we overwrite
        for name, weight in targets:
            up = torch.zeros(weight.shape[0], rank)
            torch.nn.init.kaiming_uniform_(up, a=5 ** 0.5, generator=g)
            out[name] = LoraDiff((up, torch.zeros(rank, weight.shape[1:].numel()), 1.0, None, None, None))
    return out


def _gaussian_adapters(targets: list[tuple[str, torch.Tensor]], rank: int, g: torch.Generator) -> dict[str, LoraDiff]:
    """peft's "gaussian" LoRA init (diffusers' DreamBooth scripts): down normal with std 1 / rank,
    up zero, alpha = rank (scale 1), one adapter per (key, weight) in ``targets``, drawn in order."""
    out: dict[str, LoraDiff] = {}
    with torch.inference_mode(False), torch.random.fork_rng(devices=[]):   # LoraDiff's layers draw an init we overwrite
        for name, weight in targets:
            down = torch.zeros(rank, weight.shape[1:].numel()).normal_(0.0, 1.0 / rank, generator=g)
            out[name] = LoraDiff((torch.zeros(weight.shape[0], rank), down, float(rank), None, None, None))
    return out


# The text encoder's attention projections diffusers' DreamBooth LoRA scripts adapt with
# ``--train_text_encoder`` (peft ``target_modules``), and the LoRA key prefix the host reads for
# any text encoder's weight (``comfy.lora.model_lora_keys_clip``: "text_encoders.<module>").
TEXT_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
TEXT_PREFIX = "text_encoders."


def text_lora_adapters(clip, node: str, rank: int, generator: torch.Generator) -> dict[str, LoraDiff]:
    """One gaussian-init ``LoraDiff`` (as ``lora_adapters``' DreamBooth ones) per attention
    projection of each text encoder the CLIP holds (SDXL: both), keyed
    ``text_encoders.<the CLIP's module name>`` (the host's LoRA key for it)."""
    targets = []
    for prefix, encoder in named_text_encoders(clip, node):
        for name, module in encoder.named_modules():
            weight = getattr(module, "weight", None)
            if hasattr(module, "weight_function") and weight is not None and name.endswith(
                    tuple(f".{p}" for p in TEXT_PROJECTIONS)):
                targets.append((f"{TEXT_PREFIX}{prefix}.{name}", weight))
    return _gaussian_adapters(targets, rank, generator)


def with_text_lora(clip, lora: dict[str, torch.Tensor], strength: float = 1.0):
    """A clone of ``clip`` with the text encoder's part of ``lora`` (``text_encoders.…`` keys: low-rank
    pairs or whole differences, as ``with_lora``) added as weight patches, as LoraLoader adds a
    file's; every module must land."""
    part = {k: v for k, v in lora.items() if k.startswith(TEXT_PREFIX)}
    return _patched(clip, part, comfy.lora.model_lora_keys_clip(clip.cond_stage_model, {}), strength, "the CLIP")


def _patched(target, lora: dict[str, torch.Tensor], key_map: dict, strength: float, where: str):
    """A clone of ``target`` (a MODEL or a CLIP) with ``lora`` put on it through ``key_map`` as
    ``comfy.sd.load_lora_for_models`` puts a file's (conversion, ``load_lora``, ``add_patches``);
    refused unless every module lands."""
    patches = comfy.lora.load_lora(comfy.lora_convert.convert_lora(lora), key_map)
    patched = target.clone()
    landed = set(patched.add_patches(patches, strength))
    wanted = sum(1 for k in lora if k.endswith((".alpha", ".diff", ".diff_b")))   # one patched tensor each
    if len(landed) != wanted:
        raise RuntimeError(f"LoRA: {wanted - len(landed)} of {wanted} weights found no place in {where} (its "
                           f"layout changed since the LoRA was made)")
    return patched


def load_into(node: str, adapters: dict[str, LoraDiff], lora: dict[str, torch.Tensor], name: str) -> None:
    """Start ``adapters`` from a LoRA of the same layout (a run to resume): every module and
    shape must match, else the node refuses it, naming the input."""
    modules = {k[:-len(".alpha")] for k in lora if k.endswith(".alpha")} if isinstance(lora, dict) else set()
    if modules != set(adapters):
        raise NodeInputError(node, f"input '{name}' is a LoRA of {len(modules)} layers, not the {len(adapters)} this "
                                   f"node trains on this model; connect the 'lora' output of an earlier run of this "
                                   f"node with the same model, or leave '{name}' empty.")
    for key, adapter in adapters.items():
        up, down = lora[f"{key}.lora_up.weight"], lora[f"{key}.lora_down.weight"]
        if up.shape != adapter.lora_up.weight.shape or down.shape != adapter.lora_down.weight.shape:
            raise NodeInputError(node, f"input '{name}' has rank {down.shape[0]} at {key}; this run's rank is "
                                       f"{adapter.rank}: set 'rank' to the earlier run's.")
        with torch.inference_mode(False), torch.no_grad():
            adapter.lora_up.weight.copy_(up)
            adapter.lora_down.weight.copy_(down)
            adapter.alpha.copy_(lora[f"{key}.alpha"])


def lora_state_dict(adapters: dict[str, LoraDiff]) -> dict[str, torch.Tensor]:
    """The adapters in the host's LoRA format (Train LoRA's output; Save LoRA Weights writes it)."""
    sd: dict[str, torch.Tensor] = {}
    for name, adapter in adapters.items():
        sd[f"{name}.lora_up.weight"] = adapter.lora_up.weight.detach().float().cpu().clone()
        sd[f"{name}.lora_down.weight"] = adapter.lora_down.weight.detach().float().cpu().clone()
        sd[f"{name}.alpha"] = adapter.alpha.detach().float().cpu().clone()
    return sd


def with_lora(model: ModelPatcher, lora: dict[str, torch.Tensor], strength: float = 1.0) -> ModelPatcher:
    """A clone of ``model`` with ``lora`` added as weight patches, as LoraLoader adds a file's
    (``comfy.lora``: key map, conversion, ``add_patches``); every module of the LoRA must land.
    ``lora`` holds low-rank pairs (``.lora_up`` / ``.lora_down`` / ``.alpha``) or whole changes of
    a weight or bias (``<module>.diff`` / ``<module>.diff_b``: the host's "diff" patch, Custom
    Diffusion's and the full fine-tune's). Text-encoder keys are left to ``with_text_lora``."""
    lora = {k: v for k, v in lora.items() if not k.startswith(TEXT_PREFIX)}   # the text encoder's: with_text_lora
    return _patched(model, lora, comfy.lora.model_lora_keys_unet(model.model, {}), strength, "the model")


def trainee(model: ModelPatcher, adapters: dict[str, LoraDiff]) -> ModelPatcher:
    """A clone of ``model`` that runs with ``adapters`` as weight wrappers and takes gradients
    through weights loaded under inference mode."""
    out = with_weight_copies(model)
    if out is model:
        out = model.clone()
    for name, adapter in adapters.items():
        out.add_weight_wrapper(f"{name}.weight", adapter)
    return out


def trainable(adapters: dict[str, LoraDiff], device: torch.device) -> list[torch.nn.Parameter]:
    """The adapters' up and down matrices as parameters that take gradients, on ``device``.

    The host moves weight wrappers with the model when it loads it (``move_weight_functions``:
    ``module.to(device)``), and it loads under the node's inference mode: on a GPU that move
    turns the matrices into inference tensors, which look trainable (``requires_grad`` stays
    True) but record no graph, so the loss had no ``grad_fn`` (issue 23). On a CPU the move is a
    no-op, which is why only GPU runs failed. Called outside inference mode, after the load."""
    params = []
    for adapter in adapters.values():
        for layer in (adapter.lora_up, adapter.lora_down):
            w = layer.weight
            if w.is_inference() or w.device != device or not w.requires_grad:
                layer.weight = torch.nn.Parameter(w.detach().clone().to(device), requires_grad=True)
            params.append(layer.weight)
    return params


def check_converged(node: str, losses: list[float], tensors: Iterable[torch.Tensor], learning_rate: float,
                    default: str, hint: Optional[str] = None) -> None:
    """Refuse the result of an optimisation that diverged (a NaN or infinite loss or value: a black
    picture), naming the step and the learning rate to lower."""
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is None and all(bool(torch.isfinite(t).all()) for t in tensors):  # sampling-path-ok: once, after the loop
        return
    where = f"at step {bad + 1} (loss {losses[bad]})" if bad is not None else "(its weights hold NaN or inf)"
    raise NodeInputError(node, f"the optimisation diverged {where} with learning_rate {learning_rate:g}, which would "
                               f"sample a black picture; lower learning_rate (default {default})" + (hint or "") + ".")
