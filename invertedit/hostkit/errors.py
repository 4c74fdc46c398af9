"""Errors a node raises for inputs that cannot work, and the checks every node shares. The
message always names the node, the input and what would work."""
from __future__ import annotations

import logging

import torch

from ..inversion.methods import METHODS, Method
from ..inversion.record import Inversion
from ..refusals import NodeInputError, check_at_least, check_choice, check_finite, check_threshold  # noqa: F401 (handed on)
from .family import model_family
from .fingerprint import stamp_differences


#: The longest text sequence a flow transformer is run on, by its text sequence (``ModelFamily.text_sequence``), and why: the length its pipelines cut a prompt
#: to (diffusers' ``max_sequence_length``, 512 for Flux.1 and SD3.5), past which a prompt of thousands of words runs
#: the model on a sequence it never saw and wrecks the picture without a word.
TEXT_TOKENS_MAX = {
    "t5xxl": (512, "Flux.1's pipelines cut a prompt at 512 T5 tokens"),
    "clip+t5xxl": (77 + 512, "one CLIP window of 77 and 512 T5 tokens, where SD3's pipelines cut a prompt"),
    "qwen25_7b": (1024, "Qwen-Image's pipeline takes at most 1024 Qwen2.5-VL tokens (diffusers' tokenizer_max_length)"),
}


def check_bounds(node_class, **values: float) -> None:
    """Refuse numbers outside the range the node's own widget declares (``define_schema``): the
    host's graph validation refuses them too, this also covers calls that skip it."""
    schema = node_class.define_schema()
    inputs = {i.id: i for i in schema.inputs}
    for name, value in values.items():
        spec = inputs[name]
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        if (low is not None and value < low) or (high is not None and value > high):
            raise NodeInputError(schema.display_name, f"input '{name}' is {value:g}; give {low:g} to {high:g} "
                                                      f"(default {spec.default:g}).")


# float8 formats (torch has no isfinite for them): the bits of a byte that are all set where it is not finite
_FLOAT8_NOT_FINITE = {torch.float8_e4m3fn: 0x7F, torch.float8_e5m2: 0x7C}


def _finite(tensor: torch.Tensor) -> bool:
    bits = _FLOAT8_NOT_FINITE.get(tensor.dtype)
    if bits is not None:   # read as bytes: no copy in a wider dtype of what may be a cache of gigabytes
        return not bool((tensor.view(torch.uint8) & bits).eq(bits).any())  # sampling-path-ok: once, before a run
    return bool(torch.isfinite(tensor).all())  # sampling-path-ok: the checks run once, before a run's first step


def check_finite_tensor(node: str, what: str, tensor: torch.Tensor, fix: str) -> None:
    """Refuse a tensor holding NaN or infinite values (they would sample to a black or noisy image)."""
    if not _finite(tensor):
        raise NodeInputError(node, f"{what} has NaN or infinite values; {fix}")


def check_region_mask(node: str, name: str, mask: torch.Tensor, empty: str) -> None:
    """Refuse a MASK input that marks a region but holds NaN or infinite values, or no region at all
    (all 0), where the node would then ``empty`` (what it would silently do instead)."""
    check_finite_tensor(node, f"input '{name}'", mask, "give a mask with values from 0 to 1.")
    if not bool(mask.gt(0).any()):  # sampling-path-ok: the checks run once, before a run's first step
        raise NodeInputError(node, f"input '{name}' is empty (all 0), so {empty}; give the region (white), e.g. "
                                   f"Attention Store's or DiffEdit Mask's mask, or one painted in Load Image.")


def check_conditioning(node: str, name: str, conditioning, model=None, one_prompt: bool = False) -> None:
    """A CONDITIONING input must be a non-empty list of [embedding, options] with finite values;
    given ``model``, its embeddings as wide as the model's cross-attention (a prompt encoded with
    another model family's CLIP fails deep in the UNet otherwise); with ``one_prompt``, each one
    prompt's (not a pair editor's CONDITIONING of two)."""
    if not isinstance(conditioning, list) or not conditioning or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[0], torch.Tensor) for c in conditioning):
        raise NodeInputError(node, f"input '{name}' is not a CONDITIONING (or is empty); connect a CLIP Text Encode.")
    family = None if model is None else model_family(model)
    width = None if family is None else family.context_dim
    longest = None if family is None else TEXT_TOKENS_MAX.get(family.text_sequence)
    for emb, extra in conditioning:
        if width is not None and emb.shape[-1] != width and name == "clip":
            raise NodeInputError(node, f"input 'clip' encodes prompts {emb.shape[-1]} wide; the model's cross-attention "
                                       f"takes {width}. It is another model family's text encoder: connect this "
                                       f"checkpoint's CLIP.")
        if width is not None and emb.shape[-1] != width:
            raise NodeInputError(node, f"input '{name}' is an embedding {emb.shape[-1]} wide; the model's cross-attention "
                                       f"takes {width}. The prompt was encoded for another model family: encode it with "
                                       f"this checkpoint's CLIP.")
        # an instruction editor's prompt (Qwen-Image-Edit's) holds the reference image's vision tokens too
        if longest is not None and emb.ndim == 3 and emb.shape[1] > longest[0] and extra.get("reference_latents") is None:
            raise NodeInputError(node, f"input '{name}' is a prompt of {emb.shape[1]} text tokens; {family.config_name} "
                                       f"reads at most {longest[0]} ({longest[1]}): shorten the prompt.")
        if one_prompt and emb.shape[0] != 1:
            raise NodeInputError(node, f"input '{name}' holds {emb.shape[0]} prompts' embeddings (a pair editor's "
                                       f"CONDITIONING); connect one prompt's, from a CLIP Text Encode.")
        check_finite_tensor(node, f"input '{name}'", emb, "encode the prompt again.")
        pooled = extra.get("pooled_output")
        if family is not None and family.layout.startswith("dit") and family.pooled_dim is None and isinstance(pooled, torch.Tensor):
            raise NodeInputError(node, f"input '{name}' carries a pooled text vector (CLIP's), which {family.config_name} "
                                       f"does not take: the prompt was encoded by another model's text encoders (Flux's "
                                       f"or SD3's). Encode it with this model's text encoder (Load CLIP, type "
                                       f"qwen_image: Qwen2.5-VL).")
        if family is not None and family.pooled_dim and pooled is None and emb.ndim == 3:
            raise NodeInputError(node, f"input '{name}' carries no pooled text vector; this model ({family.config_name}) "
                                       f"takes one {family.pooled_dim} wide (CLIP-L's). The prompt was encoded by "
                                       f"another model's text encoder (Qwen-Image's Qwen2.5-VL gives none): encode it "
                                       f"with this model's CLIP.")
        if isinstance(pooled, torch.Tensor):
            if family is not None and family.pooled_dim and pooled.shape[-1] != family.pooled_dim:
                raise NodeInputError(node, f"input '{name}' carries a pooled text vector {pooled.shape[-1]} wide; this "
                                           f"model ({family.config_name}) takes {family.pooled_dim}. The prompt was "
                                           f"encoded by another model's text encoders (SD3's CLIP-L and CLIP-G give "
                                           f"2048, Flux's CLIP-L 768, over the same T5): encode it with this model's "
                                           f"CLIP.")
            check_finite_tensor(node, f"input '{name}' (pooled output)", pooled, "encode the prompt again.")


def check_made_with(node: str, stamp: dict, model, mismatch: str, fix: str) -> None:
    """The one check of every node given a model and something made from a model (an INVERSION,
    Imagic's embedding): refuse ``model`` unless it is the model ``stamp`` records, naming what
    differs; only warn when its weight patches (LoRA) differ. ``mismatch`` says what is wrong
    ("input 'model' is not the model the inversion was made with"), ``fix`` what works."""
    differ, actual = stamp_differences(stamp, model)
    if differ:
        what = {"model.family": "model family", "model.prediction": "prediction type",
                "model.schedule": "noise schedule", "model.weights": "weights"}
        raise NodeInputError(node, f"{mismatch} ({', '.join(what[k] for k in differ)} differ: "
                                   f"{stamp.get(differ[0], 'none recorded')} vs {actual.get(differ[0])}). {fix}")
    if stamp.get("model.patches") != actual.get("model.patches"):
        logging.warning("%s: the model's weight patches (LoRA) differ from those it was made with; the result will "
                        "not reproduce the source exactly.", node)


def _method_label(name: str) -> str:
    method = METHODS.get(name)
    return f"{name} inversion (from {method.made_by})" if method else f"'{name}' inversion"


def check_inversion(node: str, value, name: str = "inversion", model=None,
                    methods: tuple[Method, ...] | None = None, why: dict[str, str] | None = None) -> Inversion:
    """An INVERSION input must be an inversion record with finite latents; returns it. With
    ``model``: the model the inversion was made with (``check_made_with``). With ``methods``: one
    of the methods this node takes, the refusal naming them (``why``: a reason per refused method)."""
    if not isinstance(value, Inversion):
        raise NodeInputError(node, f"input '{name}' is a {type(value).__name__}, not an INVERSION; connect the "
                                   f"INVERSION output of an inverter (DDIM Invert, EDICT Invert, Edit-Friendly DDPM "
                                   f"Invert, ...) or of Load Inversion.")
    if methods is not None and value.method not in [m.name for m in methods]:
        reason = (why or {}).get(value.method, "")
        takes = ", ".join(f"{m.name} (from {m.made_by})" for m in methods)
        raise NodeInputError(node, f"input '{name}' is a {_method_label(value.method)}{reason}; {node} takes "
                                   f"{'only ' if len(methods) == 1 else ''}these inversions: {takes}.")
    for part, tensor in (("latent", value.latent), ("trajectory", value.trajectory), *value.clues.items()):
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            check_finite_tensor(node, f"input '{name}' ({part})", tensor,
                                "invert the image again (a latent with NaN gives a black or noisy image).")
    if model is not None:
        check_made_with(node, value.fingerprint, model, f"input 'model' is not the model the {name} was made with",
                        "Connect the model you inverted with (the same checkpoint), or invert again with this one.")
    return value


def require_base(method: Method, inversion, model=None) -> None:
    """Refuse an input that is not an inversion, not the kind ``method`` refines (its ``built_on``),
    or (given ``model``) made with another model."""
    check_inversion(method.made_by, inversion, model=model, methods=(METHODS[method.built_on],))
