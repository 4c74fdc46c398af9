"""The model family as one value (issue 25): what the pack needs to know about a host MODEL, read
once from it, so that checks, layouts and the inversion steps ask this value instead of each
inspecting the host's classes again.

- ``parameterisation``: the space the host samples the model in, from its ``model_sampling``
  (``comfy/model_sampling.py``): ``"eps"`` (``EPS`` and its x0 variant: ``x = x0 + sigma * noise``,
  the model seeing ``x / sqrt(1 + sigma^2)``), ``"v"`` (``V_PREDICTION``, ``EDM``: the same space, a
  v prediction), ``"flow"`` (``CONST``: rectified flow, ``x = (1 - sigma) * x0 + sigma * noise``) or
  ``"other"``. ``parameterisation_of`` gives the pure layer's description of it
  (``inversion/parameterisation.py``).
- ``layout``: the denoiser's architecture: ``"unet"`` (``openaimodel.UNetModel``: SD1.x, SD2.x,
  SDXL), ``"dit-double-single"`` (Flux's double- then single-stream blocks), ``"dit-joint"`` (SD3's
  MMDiT joint blocks; Qwen-Image's, text then image tokens in one attention), ``"dit-cross"`` (Wan 2.x: per
  block a self-attention over the clip's tokens, then a cross-attention from them to the text; its "dit" replace
  patches name the blocks ``("double_block", i)``) or ``"other"``.
- ``text_sequence``: a DiT's text tokens, the encoders they come from (what per-word maps read).
- ``context_dim``: the width of the cross-attention (text) context the denoiser takes.
- ``pooled_dim``: a DiT's pooled text vector's width (the prompt's origin where context widths agree: SD3's
  2048 from CLIP-L and CLIP-G, Flux's 768 from CLIP-L, over the same T5).
- for a UNet, the blocks holding a ``SpatialTransformer`` and their downsampling factors (what
  ``hostkit/layout.py`` hands on); for a DiT, its blocks as the host's ``"dit"`` replace patches
  name them and its patch size (what ``hostkit/dit_attention.py`` installs policies on).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import comfy.model_sampling
import torch
from comfy.ldm.flux.model import Flux
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, UNetModel, Upsample
from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel
from comfy.ldm.wan.model import WanModel
from comfy.model_patcher import ModelPatcher

from ..inversion.parameterisation import PARAMETERISATIONS, Parameterisation

BlockKey = tuple[str, int]   # ("input" | "middle" | "output", number), as transformer_options["block"] names it

EDITABLE = {"layout": ("unet",), "parameterisation": ("eps", "v")}   # what the SD techniques edit
FLOW_EDITABLE = {"layout": ("dit-double-single", "dit-joint", "dit-cross"), "parameterisation": ("flow",),
                 # the host's configs they were tested on (Flux.1 dev and Kontext, schnell, SD3 and 3.5, Qwen-Image, Wan
                 # 2.1 T2V and Wan 2.2 A14B T2V: WAN21_T2V; Wan 2.2 TI2V 5B: WAN22_T2V): a newer model on the same
                 # transformer class (Flux.2 on Flux's; Wan's I2V, VACE, Camera, S2V, Animate) is another config,
                 # refused by name
                 "config": ("Flux", "FluxSchnell", "SD3", "QwenImage", "WAN21_T2V", "WAN22_T2V")}


@dataclass(frozen=True)
class ModelFamily:
    """What the pack knows of one host model (see the module docstring). Read with ``model_family``."""

    parameterisation: str                 # "eps" | "v" | "flow" | "other"
    layout: str                           # "unet" | "dit-double-single" | "dit-joint" | "other"
    context_dim: int | None               # the cross-attention context's width
    config_name: str                      # the host's config class (SD15, SDXL, Flux, ...), for messages
    denoiser_name: str                    # the denoiser's class (UNetModel, Flux, ...), for messages
    sampling_name: str                    # the model_sampling's class, for messages
    transformer_blocks: tuple[BlockKey, ...] = ()          # UNet blocks holding a SpatialTransformer
    attention_levels: tuple[tuple[BlockKey, int], ...] = ()   # input/output ones, with their downsampling factor
    distilled_guidance: bool = False      # Flux dev: guidance is an input of the model (FluxGuidance), not CFG
    dit_blocks: tuple[BlockKey, ...] = ()  # a DiT's blocks as its "dit" replace patches name them, in order
    patch_size: int = 1                   # a DiT's image patch: latent cells a token covers, a side
    pooled_dim: int | None = None         # a DiT's pooled text vector's width (Flux: CLIP-L's; SD3: CLIP-L's and CLIP-G's)
    text_sequence: str = ""               # a DiT's text tokens: "t5xxl" (Flux), "clip+t5xxl" (SD3), "qwen25_7b" (Qwen-Image),
    #                                       "umt5xxl" (Wan)
    video: bool = False                   # a video model whose LATENT is one clip [batch, channels, frames, h, w] (Wan)

    @property
    def editable(self) -> bool:
        """Whether the pack's Stable Diffusion techniques can edit with this model (SD UNets, eps or v)."""
        return self.layout in EDITABLE["layout"] and self.parameterisation in EDITABLE["parameterisation"]

    @property
    def flow_editable(self) -> bool:
        """Whether the pack's flow techniques can edit with this model (Flux.1, SD3: rectified-flow DiTs, in the host
        configs they were tested on)."""
        return (self.layout in FLOW_EDITABLE["layout"] and self.parameterisation in FLOW_EDITABLE["parameterisation"]
                and self.config_name in FLOW_EDITABLE["config"])


def _parameterisation(model_sampling) -> str:
    if isinstance(model_sampling, comfy.model_sampling.V_PREDICTION):
        return "v"
    if isinstance(model_sampling, comfy.model_sampling.EPS):
        return "eps"
    if isinstance(model_sampling, comfy.model_sampling.CONST):
        return "flow"
    return "other"


def _has(block, kind: type) -> bool:
    return any(isinstance(m, kind) for m in block)


def _unet_layout(unet: UNetModel) -> tuple[tuple[BlockKey, ...], tuple[tuple[BlockKey, int], ...]]:
    """(the blocks holding a SpatialTransformer, the input/output ones with their downsampling factor)."""
    blocks = [("input", i) for i, b in enumerate(unet.input_blocks) if _has(b, SpatialTransformer)]
    blocks += [("output", i) for i, b in enumerate(unet.output_blocks) if _has(b, SpatialTransformer)]
    if _has(unet.middle_block, SpatialTransformer):
        blocks.append(("middle", 0))
    levels, factor = [], 1
    for i, block in enumerate(unet.input_blocks):
        if _has(block, Downsample):
            factor *= 2
        if _has(block, SpatialTransformer):
            levels.append((("input", i), factor))
    for i, block in enumerate(unet.output_blocks):
        if _has(block, SpatialTransformer):
            levels.append((("output", i), factor))
        if _has(block, Upsample):
            factor //= 2
    return tuple(blocks), tuple(levels)


def _in_features(module) -> int | None:
    """The input width of an embedder's first linear layer (its structure, not a weight), or None."""
    if module is None:
        return None
    first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
    return None if first is None else int(first.in_features)


def _read(model: ModelPatcher, model_sampling) -> ModelFamily:
    base = model.model
    denoiser = getattr(base, "diffusion_model", None)
    config = getattr(base, "model_config", None)
    names = {"config_name": type(config).__name__, "denoiser_name": type(denoiser).__name__,
             "sampling_name": type(model_sampling).__name__, "parameterisation": _parameterisation(model_sampling)}
    if isinstance(denoiser, UNetModel):
        blocks, levels = _unet_layout(denoiser)
        return ModelFamily(layout="unet", context_dim=getattr(config, "unet_config", {}).get("context_dim"),
                           transformer_blocks=blocks, attention_levels=levels, **names)
    if isinstance(denoiser, Flux):
        blocks = tuple(("double_block", i) for i in range(len(denoiser.double_blocks)))
        blocks += tuple(("single_block", i) for i in range(len(denoiser.single_blocks)))
        return ModelFamily(layout="dit-double-single", context_dim=denoiser.txt_in.in_features,
                           pooled_dim=_in_features(getattr(denoiser, "vector_in", None)),
                           distilled_guidance=bool(getattr(denoiser.params, "guidance_embed", False)),
                           text_sequence="t5xxl",
                           dit_blocks=blocks, patch_size=int(denoiser.patch_size), **names)
    if isinstance(denoiser, QwenImageTransformer2DModel):   # joint blocks on Qwen2.5-VL's text; no pooled vector
        return ModelFamily(layout="dit-joint", context_dim=denoiser.txt_in.in_features, text_sequence="qwen25_7b",
                           dit_blocks=tuple(("double_block", i) for i in range(len(denoiser.transformer_blocks))),
                           patch_size=int(denoiser.patch_size), **names)
    if isinstance(denoiser, WanModel):   # self- then cross-attention per block, UMT5's text; no pooled vector
        return ModelFamily(layout="dit-cross", context_dim=int(denoiser.text_dim), text_sequence="umt5xxl", video=True,
                           dit_blocks=tuple(("double_block", i) for i in range(len(denoiser.blocks))),
                           patch_size=int(denoiser.patch_size[-1]), **names)
    if isinstance(denoiser, MMDiT):
        return ModelFamily(layout="dit-joint", context_dim=getattr(denoiser.context_embedder, "in_features", None),
                           pooled_dim=_in_features(getattr(denoiser, "y_embedder", None)), text_sequence="clip+t5xxl",
                           dit_blocks=tuple(("double_block", i) for i in range(len(denoiser.joint_blocks))),
                           patch_size=int(denoiser.patch_size), **names)
    return ModelFamily(layout="other", context_dim=None, **names)


# One family per base model and sampling object, read the first time it is asked for: a model's
# clones share its base model, and a node that patches another model_sampling in (ModelSamplingDiscrete,
# ModelSamplingSD3, ...) gives its clone another sampling object.
_FAMILIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def model_family(model: ModelPatcher) -> ModelFamily:
    """The family of ``model`` (a ModelPatcher), read once per base model and sampling object."""
    model_sampling = model.get_model_object("model_sampling")
    per_base = _FAMILIES.setdefault(model.model, weakref.WeakKeyDictionary())
    if model_sampling not in per_base:
        per_base[model_sampling] = _read(model, model_sampling)
    return per_base[model_sampling]


def parameterisation_of(family: ModelFamily) -> Parameterisation:
    """The pure layer's description of the family's sampling space (``inversion/parameterisation.py``)."""
    if family.parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"no step is known for {family.sampling_name} sampling ({family.parameterisation})")
    return PARAMETERISATIONS[family.parameterisation]
