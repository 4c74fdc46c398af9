"""Tiny Stable Diffusion models with seeded random weights, built from ComfyUI's own classes.

What they are
    Mechanics-testing models: a MODEL (ModelPatcher), CLIP and VAE for each of the families
    ``"sd1"`` (SD1.x, eps prediction), ``"sd2-v"`` (SD2.x, v prediction, penultimate-layer
    OpenCLIP-style text encoder) and ``"sdxl"`` (SDXL: clip_l + clip_g with pooled output,
    size/crop conditioning through ``adm``). Their weights are random, so they make noise,
    not pictures. They exist so that the pack's nodes, patches and workflows can be run and
    tested end to end (and compared with diffusers on identical weights) in well under a
    second and without downloading anything. Never use them to judge image quality.

How they are built
    Everything is the host's own code with shrunk sizes, reached through the host kit's
    ``hostkit/loaders.py``: ``comfy.supported_models.SD15`` /
    ``SD20`` / ``SDXL`` with a small ``unet_config`` (32 base channels, 2 or 3 levels, the
    family's transformer layout, linear or conv projections, context dim 64 or 96) turned
    into a ``BaseModel`` / ``SDXL`` model and wrapped in a ``ModelPatcher``;
    ``comfy.sd.CLIP`` with the family's tokenizer and text-encoder classes and small
    ``clip_*_model_config`` overrides (3 layers, 32-64 wide, the real 49408-token
    vocabulary, so the stock tokenizers work); ``comfy.sd.VAE`` with a small ``ddconfig``
    (8x downscale, 4 latent channels). The host creates layers with ``torch.empty``; every
    parameter is then drawn here from one ``torch.Generator`` seeded per family, component
    and seed, on the CPU in float32 (the text encoder and VAE are forced to float32: the host
    would pick fp16 for the text encoder). The same seed gives bit-identical weights. The UNet
    is then loaded as the host loads a float32 checkpoint, in the dtype it picks for the device
    and its flags (``loaders.host_unet_dtype``): float32 on the CPU, fp16 on a CUDA GPU.

    The initialisation is variance-preserving (linear and conv weights ~ N(0, 1/fan_in),
    norms ~ 1 + small noise) with the UNet's output layer scaled by 0.1 (see ``_calm_output``),
    so the UNet's prediction has an O(0.1) spread and changes
    smoothly with the input and the text; the first time-embedding layer is damped on the
    fast timestep frequencies so that it also changes smoothly with the timestep.
    Parameters do not require grad (like frozen checkpoint weights). The VAE's latent is scaled to
    about the spread of real SD latents (std ~ 1/0.18215) so that the host's latent scale
    factor keeps its usual meaning.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import Enum

import torch

from ..hostkit import loaders
from ..hostkit.loaders import HOST_CLASSES

FAMILIES: tuple[str, ...] = ("sd1", "sd2-v", "sdxl")

# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------


_VOCAB = 49408  # the real CLIP vocabulary, so that the host's tokenizers work unchanged


def _text_config(hidden: int, heads: int, act: str) -> dict:
    """Overrides for a ComfyUI CLIP text-model json config (``clip_*_model_config``)."""
    return {
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_attention_heads": heads,
        "num_hidden_layers": 3,  # SD2 and SDXL read layer -2
        "projection_dim": hidden,  # ComfyUI's text_projection is square
        "hidden_act": act,
        "vocab_size": _VOCAB,
        "max_position_embeddings": 77,
    }


def _unet_base(levels: int, depth: list[int], depth_mid: int, context_dim: int, linear: bool) -> dict:
    """A shrunk UNet config in the form ``comfy.model_detection`` produces."""
    out_depth = []
    for d in depth[::2]:
        out_depth += [d] * 3  # three output blocks per level; the UNet pops from the end
    return {
        "use_checkpoint": False,
        "image_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "num_res_blocks": [2] * levels,
        "channel_mult": [1, 2, 2][:levels],
        "transformer_depth": list(depth),
        "transformer_depth_middle": depth_mid,
        "transformer_depth_output": out_depth,
        "use_spatial_transformer": True,
        "legacy": False,
        "use_linear_in_transformer": linear,
        "context_dim": context_dim,
        "adm_in_channels": None,
        "use_temporal_attention": False,
        "use_temporal_resblock": False,
    }


@dataclass(frozen=True)
class FamilySpec:
    """How one family is put together (also read by the diffusers bridge in the tests)."""

    name: str
    config_class: type  # the host's config class (``loaders.HOST_CLASSES``)
    unet_config: dict
    unet_overrides: dict  # applied after the config class adds its ``unet_extra_config``
    model_type: Enum  # the host's ModelType
    clip_target: tuple  # (tokenizer class, text-encoder class)
    text_configs: dict = field(default_factory=dict)  # model_options key -> overrides


_SDXL_POOLED = 64  # clip_g width = pooled width

SPECS: dict[str, FamilySpec] = {
    "sd1": FamilySpec(
        name="sd1",
        unet_config=_unet_base(2, [1, 1, 1, 1], 1, context_dim=64, linear=False),
        unet_overrides={"num_heads": 4, "num_head_channels": -1},
        **HOST_CLASSES["sd1"]._asdict(),
        text_configs={"clip_l_model_config": _text_config(64, 4, "quick_gelu")},
    ),
    # SD1.5's own layout (4 levels, 2 res blocks, channel_mult 1-2-4-4, attention from the second
    # level, middle at latent/8) at 32 base channels: the layout reference code hard-codes (maps of
    # 32x32 and 16x16 tokens at a 64x64 latent). Attention at the finest level is left out to keep
    # a 64x64 latent cheap on a CPU. Not in FAMILIES: built by name for parity tests.
    "sd1-layout": FamilySpec(
        name="sd1-layout",
        unet_config={**_unet_base(4, [0, 0, 1, 1, 1, 1, 0, 0], 1, context_dim=64, linear=False),
                     "channel_mult": [1, 2, 4, 4], "image_size": 64},
        unet_overrides={"num_heads": 4, "num_head_channels": -1},
        **HOST_CLASSES["sd1"]._asdict(),
        text_configs={"clip_l_model_config": _text_config(64, 4, "quick_gelu")},
    ),
    "sd2-v": FamilySpec(
        name="sd2-v",
        unet_config=_unet_base(2, [1, 1, 1, 1], 1, context_dim=64, linear=True),
        unet_overrides={"num_heads": -1, "num_head_channels": 16},
        **HOST_CLASSES["sd2-v"]._asdict(),
        text_configs={"clip_h_model_config": _text_config(64, 4, "gelu")},
    ),
    "sdxl": FamilySpec(
        name="sdxl",
        unet_config={
            **_unet_base(3, [0, 0, 1, 1, 2, 2], 2, context_dim=32 + _SDXL_POOLED, linear=True),
            "num_classes": "sequential",
            "adm_in_channels": _SDXL_POOLED + 6 * 256,
        },
        unet_overrides={"num_heads": -1, "num_head_channels": 16},
        **HOST_CLASSES["sdxl"]._asdict(),
        text_configs={
            "clip_l_model_config": _text_config(32, 2, "quick_gelu"),
            "clip_g_model_config": _text_config(_SDXL_POOLED, 4, "gelu"),
        },
    ),
}

VAE_DDCONFIG: dict = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 64,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,  # GroupNorm(32) needs multiples of 32
    "ch_mult": [1, 2, 2, 2],  # three downsamples: 8x
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
VAE_EMBED_DIM = 4
_LATENT_STD = 1.0 / 0.18215  # about the spread of real SD VAE latents


# ---------------------------------------------------------------------------------------------
# Seeded initialisation
# ---------------------------------------------------------------------------------------------

def _generator(family: str, component: str, seed: int) -> torch.Generator:
    digest = hashlib.sha256(f"{family}/{component}/{int(seed)}".encode()).digest()
    g = torch.Generator(device="cpu")
    g.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return g


def _fill(t: torch.Tensor, g: torch.Generator, std: float, mean: float = 0.0) -> None:
    """Draw on the CPU (so the numbers do not depend on the device), then copy in place."""
    t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float32).mul_(std).add_(mean).to(t.dtype))


_NORMS = (torch.nn.GroupNorm, torch.nn.LayerNorm)


def _is_norm(module: torch.nn.Module) -> bool:
    """torch's norms, and the host's own RMS / T5 norms (a ``scale`` or ``weight`` vector; the Wan VAE's
    ``RMS_norm``, a ``gamma`` of one value a channel)."""
    return isinstance(module, _NORMS) or "Norm" in type(module).__name__ or type(module).__name__ == "RMS_norm"


@torch.no_grad()
def init_weights(module: torch.nn.Module, g: torch.Generator, skip: tuple[str, ...] = ()) -> None:
    """Initialise every parameter of ``module`` from ``g`` (in ``named_parameters`` order): the tiny
    UNets, DiTs, text encoders and VAEs alike.

    Linear/conv weights ~ N(0, 1/fan_in); norm scales (torch's norms, the host's RMS / T5 norms: a
    ``weight`` or ``scale`` vector) ~ 1 + N(0, 0.1^2), their biases ~ N(0, 0.1^2); other biases ~
    N(0, 0.05^2); embeddings ~ N(0, 1). A parameter of any other kind is an error, so nothing
    created with ``torch.empty`` is ever left uninitialised, and so is a floating-point buffer that
    is not finite. ``skip`` lists parameter names to leave.
    """
    owner = {}
    for mod_name, mod in module.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            owner[f"{mod_name}.{p_name}" if mod_name else p_name] = mod
    for name, p in module.named_parameters():
        if name in skip:
            continue
        mod = owner[name]
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(mod, torch.nn.Embedding):
            _fill(p, g, 1.0)
        elif _is_norm(mod) and p.shape.numel() == p.shape[0]:
            _fill(p, g, 0.1, mean=1.0 if leaf in ("weight", "scale", "gamma") else 0.0)
        elif leaf == "bias":
            _fill(p, g, 0.05)
        elif leaf == "weight" and p.ndim >= 2:
            _fill(p, g, 1.0 / math.sqrt(p[0].numel()))
        else:
            raise RuntimeError(f"tiny_models: no initialisation rule for parameter {name!r} "
                               f"of {type(mod).__name__} {tuple(p.shape)}")
    for name, b in module.named_buffers():
        if b.is_floating_point() and not torch.isfinite(b).all():
            raise RuntimeError(f"tiny_models: buffer {name!r} is not initialised")


_TIME_SCALE = 0.02  # rad per timestep above which time features are damped (~300-step period)


@torch.no_grad()
def _smooth_in_time(weight: torch.Tensor) -> None:
    """Damp the first time-embedding layer's columns by frequency, in place.

    The UNet's timestep features are cos/sin of ``t * f_i`` with ``f_i`` from 1 down to 1e-4
    rad per step. A trained model ignores the fast ones; with random weights they would make
    the prediction jump between neighbouring timesteps. Columns are scaled by
    ``1 / (1 + (f_i / 0.02)^2)`` and the matrix renormalised to its former spread.
    """
    half = weight.shape[1] // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    damp = 1.0 / (1.0 + (freqs / _TIME_SCALE) ** 2)
    damp = torch.cat([damp, damp]).to(torch.float32)
    before = weight.std()
    weight.mul_(damp)
    weight.mul_(before / weight.std())


_OUTPUT_GAIN = 0.1  # scale of the UNet's final conv: eps predictions of ~0.1 spread


@torch.no_grad()
def _calm_output(out_conv: torch.nn.Module, gain: float = _OUTPUT_GAIN) -> None:
    """Scale the UNet's final conv (or any final layer) down by ``gain``.

    A trained denoiser's prediction is consistent with its input, so the probability-flow
    ODE is well conditioned and DDIM inversion retraces it. A random network is not: along
    the sigma range (0.03 to 14.6) its step errors are amplified by roughly
    (sigma_max / sigma_min) ** J, J its gain. Measured on the sd1 model, DDIM inversion then
    reconstruction at 50 steps: relative latent error 2.0 at gain 1, 0.41 at 0.3, 0.063 at
    0.1 (comparable to real Stable Diffusion's drift at cfg 1), 0.008 at 0.03 (nearly a
    constant-noise model). 0.1 keeps the model's dependence on input, time and text while
    errors stay in the range the papers report.
    """
    out_conv.weight.mul_(gain)
    out_conv.bias.mul_(gain)


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------

def _spec(family: str) -> FamilySpec:
    if family not in SPECS:
        raise ValueError(f"unknown tiny model family {family!r}; expected one of {FAMILIES}")
    return SPECS[family]


def build_tiny_unet(family: str, seed: int = 0):
    """The family's UNet as a host ``BaseModel`` (``SDXL`` for sdxl) in a ModelPatcher."""
    return build_unet(_spec(family), seed)


def build_unet(spec: FamilySpec, seed: int = 0):
    """The UNet of any ``FamilySpec`` (also real-sized ones, for the cost benchmark), seeded, in a
    host ModelPatcher."""
    host_config = (spec.config_class, spec.unet_config, spec.unet_overrides, spec.model_type)
    model = loaders.empty_unet(*host_config)
    init_weights(model.diffusion_model, _generator(spec.name, "unet", seed))
    _smooth_in_time(model.diffusion_model.time_embed[0].weight)
    _calm_output(model.diffusion_model.out[-1])
    # The weights are drawn in float32 (the same numbers whatever the device), then loaded as the
    # host loads a float32 checkpoint: in the UNet dtype it picks for this device and its flags.
    return loaders.built_unet(*host_config, model)


def build_tiny_clip(family: str, seed: int = 0):
    """The family's text encoder(s) as a host ``comfy.sd.CLIP``, in float32."""
    return build_clip(_spec(family), seed)


def build_clip(spec: FamilySpec, seed: int = 0):
    """The text encoder(s) of any ``FamilySpec`` as a host ``comfy.sd.CLIP``, seeded, in float32."""
    clip = loaders.text_encoder(spec.clip_target, spec.text_configs)
    skip = tuple(n for n, _ in clip.cond_stage_model.named_parameters() if n.endswith("logit_scale"))
    init_weights(clip.cond_stage_model, _generator(spec.name, "clip", seed), skip=skip)
    return clip


def build_tiny_vae(family: str, seed: int = 0):
    """A small KL autoencoder (8x downscale, 4 channels) as a host ``comfy.sd.VAE``."""
    _spec(family)
    ae = loaders.kl_autoencoder(VAE_DDCONFIG, VAE_EMBED_DIM)
    init_weights(ae, _generator(family, "vae", seed))
    with torch.no_grad():
        # Latent mean of about real SD spread; post_quant_conv undoes the scale.
        ae.quant_conv.weight.mul_(_LATENT_STD)
        ae.post_quant_conv.weight.div_(_LATENT_STD)
    return loaders.built_kl_vae(ae, VAE_DDCONFIG, VAE_EMBED_DIM)


def build_tiny_models(family: str, seed: int = 0) -> tuple:
    """(MODEL, CLIP, VAE) of ``family`` ("sd1", "sd2-v", "sdxl") with weights drawn from ``seed``: a
    host ModelPatcher, ``comfy.sd.CLIP`` and ``comfy.sd.VAE``.

    Fresh objects on every call; the same seed gives bit-identical weights.
    """
    return build_tiny_unet(family, seed), build_tiny_clip(family, seed), build_tiny_vae(family, seed)
