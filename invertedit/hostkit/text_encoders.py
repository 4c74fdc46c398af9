"""The text encoders of SD1.x, SD2.x and SDXL checkpoints as the training nodes use them
(Textual Inversion, Custom Diffusion, DreamBooth with ``--train_text_encoder``): which encoders a
CLIP holds, whether the model takes a pooled vector, a clone of the CLIP that gradients flow
through, and prompts encoded from token rows differentiably, as CLIP Text Encode encodes them."""
from __future__ import annotations

import contextlib

import comfy.model_base
import comfy.sdxl_clip
import torch
from comfy.model_patcher import ModelPatcher
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from .errors import NodeInputError


def text_encoder(clip, node: str) -> tuple[str, torch.nn.Module]:
    """(the tokenizer's key, "l" or "h", the encoder) of a one-encoder CLIP (SD1.x, SD2.x)."""
    model = getattr(clip, "cond_stage_model", None)
    name = getattr(model, "clip", None)
    encoder = getattr(model, name, None) if isinstance(name, str) else None
    if encoder is None or not hasattr(encoder, "process_tokens"):
        kind = type(model).__name__ if model is not None else type(clip).__name__
        raise NodeInputError(node, f"input 'clip' is {kind}, not the one text encoder of an SD1.x or SD2.x "
                                   f"checkpoint: connect one of those checkpoints' CLIP.")
    return model.clip_name, encoder


def text_encoders(clip, node: str) -> list[tuple[str, torch.nn.Module]]:
    """(tokenizer key, encoder) of each encoder a new word is learned in: SD1.x's or SD2.x's one,
    SDXL's clip_l and clip_g (in the order of the UNet's context)."""
    model = getattr(clip, "cond_stage_model", None)
    if isinstance(model, comfy.sdxl_clip.SDXLClipModel):
        return [("l", model.clip_l), ("g", model.clip_g)]
    name = getattr(model, "clip", None)
    if isinstance(name, str) and hasattr(getattr(model, name, None), "process_tokens"):
        return [text_encoder(clip, node)]
    kind = (type(model).__name__ if model is not None else type(clip).__name__).rstrip("_")   # the host's subclasses end in _
    raise NodeInputError(node, f"input 'clip' is {kind}; this node trains the text encoders of SD1.x, SD2.x and SDXL "
                               f"checkpoints: connect one of those checkpoints' CLIP.")


def named_text_encoders(clip, node: str) -> list[tuple[str, torch.nn.Module]]:
    """``text_encoders``' encoders under their names in the CLIP (``clip_l``, ``clip_h``, ``clip_g``):
    the prefix of their weights' keys."""
    wanted = {id(encoder) for _, encoder in text_encoders(clip, node)}
    return [(name, child) for name, child in clip.cond_stage_model.named_children() if id(child) in wanted]


def takes_pooled(model: ModelPatcher) -> bool:
    """Whether the model's conditioning vector starts with the text encoder's pooled output (SDXL)."""
    return isinstance(model.model, (comfy.model_base.SDXL, comfy.model_base.SDXLRefiner))


def check_clip_width(node: str, model: ModelPatcher, encoders: list[tuple[str, torch.nn.Module]]) -> None:
    """The CLIP's ``encoders`` encode prompts as wide as the model's cross-attention takes."""
    width = sum(encoder.transformer.get_input_embeddings().weight.shape[-1] for _, encoder in encoders)
    context = model.model.model_config.unet_config.get("context_dim")
    if context is not None and context != width:
        raise NodeInputError(node, f"input 'clip' encodes prompts {width} wide; the model's cross-attention takes "
                                   f"{context}. It is another checkpoint's text encoder: connect this checkpoint's CLIP.")


def encoder_for_gradients(clip):
    """A clone of ``clip`` whose layers copy their weights at each forward when they are inference
    tensors (loaded under the node's inference mode), so that gradients reach the vectors."""
    out = clip.clone()
    if any(p.is_inference() for p in clip.cond_stage_model.parameters()):
        for name, module in clip.cond_stage_model.named_modules():
            if hasattr(module, "weight_function"):
                for kind in ("weight", "bias"):
                    if getattr(module, kind, None) is not None:
                        out.patcher.add_weight_wrapper(f"{name}.{kind}", _same)
    return out


def _same(weight: torch.Tensor) -> torch.Tensor:
    return weight


def encode_rows(clip, encoder: torch.nn.Module, rows: list, pooled: bool = False):
    """The encoder's hidden states ``[rows, tokens, width]`` of token rows (ids and vectors), as CLIP
    Text Encode computes them (the CLIP's layer option, its model loaded), differentiably; with
    ``pooled``, (the states, the encoder's pooled output)."""
    clip.cond_stage_model.reset_clip_options()
    if clip.layer_idx is not None:
        clip.cond_stage_model.set_clip_options({"layer": clip.layer_idx})
    clip.load_model()
    # The host's CLIP adds its residuals in place (``x += ...``) over tensors its layer norms saved for
    # the backward pass: saved tensors are copied when saved, so the gradient sees the values it needs.
    with torch.autograd.graph.saved_tensors_hooks(torch.clone, _same), attention_for_gradients(clip.patcher.load_device):
        out = encoder(rows)
    return (out[0], out[1]) if pooled else out[0]


def attention_for_gradients(device: torch.device):
    """On CUDA, the text encoder's attention through PyTorch's math kernel while gradients flow
    through it: the host passes CLIP's causal mask (77 x 77) as the attention bias, and the
    memory-efficient kernel that SDPA picks for it in half precision refuses to run its backward
    ("attn_bias is not correctly aligned": 77 is not a multiple of 4), which GPU runs of Textual
    Inversion, Custom Diffusion and DreamBooth's text-encoder training met (H200, H100; the host's
    fp16 text encoders). The host on NVIDIA wraps every attention call in its own backend choice
    (``comfy.ops.scaled_dot_product_attention``: ``sdpa_kernel(priority, set_priority=True)``),
    which overrides a choice made around the encoder; so the math kernel is chosen inside that
    call, at the attention function itself. Elsewhere the host's own choice."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return MathAttention()


class MathAttention(TorchFunctionMode):
    """While active, every ``scaled_dot_product_attention`` call runs with the math backend only,
    whatever backend choice surrounds the call."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.nn.functional.scaled_dot_product_attention:
            with sdpa_kernel([SDPBackend.MATH]):
                return func(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def encode_prompt(clip, encoders: list[tuple[str, torch.nn.Module]], rows: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """The UNet's context and the last encoder's pooled output of ``rows[i]``, each encoder's token
    rows, as the host's CLIP puts them together (SDXL: the states side by side, cut to the shorter,
    clip_g's pooled output)."""
    states, pooled = [], None
    for (_, encoder), encoder_rows in zip(encoders, rows):
        hidden, pooled = encode_rows(clip, encoder, encoder_rows, pooled=True)
        states.append(hidden)
    cut = min(s.shape[1] for s in states)
    return torch.cat([s[:, :cut] for s in states], dim=-1), pooled
