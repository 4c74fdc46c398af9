"""Tiny Flux.1 (dev, schnell), SD3, Qwen-Image and Wan 2.1 / 2.2 models with seeded random weights, built from
ComfyUI's own classes.

What they are
    Mechanics-testing models: a MODEL (ModelPatcher), CLIP and VAE for each of the flow-matching
    families ``"flux-dev"`` (Flux.1 dev: double- then single-stream DiT, guidance-distilled, the host's
    Flux sampling: shift 1.15, timestep = sigma), ``"flux-schnell"`` (Flux.1 schnell: the same DiT
    without the guidance embedding, discrete flow sampling with shift 1) and ``"sd3"`` (SD3's MMDiT:
    joint blocks, discrete flow sampling with shift 3, timestep = 1000 sigma) and ``"qwen-image"``
    (Qwen-Image's MMDiT: joint blocks on Qwen2.5-VL's text, no pooled vector, the host's Flux sampling:
    shift 1.15, timestep = sigma; latents (B, 16, 1, H, W) from a Wan 2.1 VAE). All four predict a
    rectified-flow velocity (``x = (1 - sigma) x0 + sigma noise``). Their weights are random, so they
    make noise, not pictures. They exist so that the pack's flow-model techniques (FlowEdit,
    RF-Inversion, ...) and the stock nodes around them (CLIPTextEncode, FluxGuidance,
    EmptySD3LatentImage, KSampler, VAEEncode/Decode) can be run and tested end to end, and compared
    with diffusers' ``FluxTransformer2DModel`` / ``SD3Transformer2DModel`` / ``QwenImageTransformer2DModel``
    on identical weights
    (``tests/reference/flow_diffusers.py``), in well under a second and without downloading anything.
    Never use them to judge image quality.

Sizes
    - Flux (both): hidden 64, 2 heads of 32 (rope axes 8 + 12 + 12), 2 double-stream + 2 single-stream
      blocks, mlp ratio 4, patch 2 over 16 latent channels (64 features a token), text context from a
      tiny T5 (64 wide, 2 layers, 4 heads of 16, the real 32128-token vocabulary, 256 tokens as the
      host's Flux tokenizer pads), pooled vector from a tiny CLIP-L (32 wide, 3 layers). About 0.5 M
      denoiser parameters.
    - SD3: the host's MMDiT at depth 2 (it fixes hidden = 64 x depth = 128 and heads = depth = 2), 2
      joint blocks, patch 2 over 16 latent channels, position table of 48 x 48 patches (latents up to
      96 x 96), pooled vector clip_l | clip_g (32 + 64 = 96 wide). The text encoder is clip_l + clip_g
      without T5: the host's ``sd3_clip`` pads the CLIP context to a hard-coded 4096 wide (and would
      concatenate T5's tokens, which must then be 4096 wide too: a 0.5 GB embedding), so the context is
      77 tokens x 4096 (96 of them non-zero) and the context embedder is 4096 -> 128. About 1.6 M
      denoiser parameters.
    - Qwen-Image: the host's ``QwenImageTransformer2DModel`` with 2 joint blocks (the real one has 60), 2 heads
      of 32 (hidden 64; rope axes 8 + 12 + 12, the real one's 16 + 56 + 56 over 24 heads of 128), patch 2 over
      16 latent channels, text 64 wide (the real one's 3584) from a tiny Qwen2.5-VL (the host's class: 64 wide,
      2 layers, 2 heads, 1 key-value head, the real 152064-token vocabulary and tokenizer; a vision tower 32
      wide, 2 layers, in place of the real one's 0.6 G parameters); prompts are not padded (a prompt's
      tokens, its chat template stripped by the host: "a photo of a cat" is 10). About 0.34 M denoiser
      parameters, 9.9 M text-encoder ones (9.7 M of them the vocabulary's embedding). Its VAE is the host's
      Wan 2.1 autoencoder (``comfy.ldm.wan.vae.WanVAE``) at base width 8 (the real one's 96; 0.67 M
      parameters), 8x downscale, 16 channels, a frame axis of 1, its latent brought to about the mean and
      spread per channel of the host's ``latent_formats.Wan21`` (``_WAN_RAW_STD``).
    - Wan 2.1 T2V (``"wan21"``, the host's WAN21_T2V: Wan 2.1 1.3B / 14B and Wan 2.2 A14B's experts) and Wan 2.2
      TI2V 5B (``"wan22"``, WAN22_T2V): the host's ``WanModel`` with 2 blocks (the real ones have 30 / 40; 1.3B:
      dim 1536, 12 heads of 128), dim 64 in 2 heads of 32 (rope axes 12 + 10 + 10 over frames, rows, columns),
      ffn 128, patch 1 x 2 x 2 over 16 latent channels (Wan 2.2 5B: 48), discrete flow sampling with shift 8
      (timestep = 1000 sigma); per block a self-attention over the clip's tokens and a cross-attention to the
      text. The text: the host's UMT5-XXL class (``comfy.text_encoders.wan``) 64 wide, 2 layers, 4 heads, on
      the host's bundled Pile-T5 SentencePiece model (``loaders.pile_t5_spiece_model``: 32000 English word
      pieces; the real UMT5 one, 256384 pieces, is not bundled with the host: Wan's tokenizer reads it from the
      text encoder's file, ``spiece_model``), prompts padded to 512 tokens as Wan's. VAE: Qwen-Image's tiny Wan
      2.1 VAE (``"wan21"``; latents [B, 16, 1 + (frames - 1) / 4, H / 8, W / 8]) or the host's Wan 2.2 VAE
      (``comfy.ldm.wan.vae2_2.WanVAE``) at base width 8 (``"wan22"``: 48 channels, 16x in space). Their final
      projection at ``_WAN_OUTPUT_GAIN`` (0.1). The host's stock loaders do not read these files (Load CLIP's
      type wan detects UMT5 by a 24th block 4096 wide; Load VAE builds the real widths from the keys): the
      workflows reach them through the Demo Model (the runner's ``demo-wan21``). with 16 latent channels and 8x downscale (32 base
      channels, one res block a level), its latent scaled to about the spread and mean the host's
      latent format expects (``latent_formats.Flux``: std 1/0.3611, mean 0.1159; ``SD3``: std 1/1.5305,
      mean 0.0609), so that the model sees latents of about unit spread.
    A 32 x 32 latent (256 px) step takes a few milliseconds on a CPU.

How they are built
    As ``tiny_models`` builds the SD ones, through the host kit's ``hostkit/loaders.py``: the host's
    config class (``comfy.supported_models.Flux`` / ``FluxSchnell`` / ``SD3`` / ``QwenImage``) with a small
    ``unet_config`` turned into the model its ``get_model`` builds (``model_base.Flux`` /
    ``model_base.SD3``) in a ModelPatcher; ``comfy.sd.CLIP`` with the real tokenizers
    (``FluxTokenizer``: CLIP + T5, ``SD3Tokenizer``: CLIP-L, CLIP-G, T5) and small
    ``clip_l_model_config`` / ``clip_g_model_config`` / ``t5xxl_model_config`` overrides; ``comfy.sd.VAE``
    with a small ``ddconfig``. Every parameter is drawn on the CPU in float32 from one
    ``torch.Generator`` seeded per family, component and seed (the same seed gives bit-identical
    weights), variance-preserving (linear weights ~ N(0, 1/fan_in), norm scales ~ 1 + small noise);
    SD3's position table is the fixed 2-D sin-cos table SD3 (and diffusers) use. The first
    time-embedding layer (and Flux dev's guidance-embedding layer) is damped on the fast frequencies
    (``tiny_models._smooth_in_time``), Qwen-Image's text keys' norm gain tripled (``_QWEN_TEXT_KEY_GAIN``: its
    velocity then depends on the prompt), and the final projection scaled by ``_OUTPUT_GAIN``, so that the
    velocity has an O(0.3) spread and changes smoothly with input, time, guidance and text. The
    denoiser is then loaded as the host loads a float32 checkpoint (``loaders.load_unet``: float32 on
    the CPU, the dtype the host picks on a GPU or under ``--fp16-unet`` and similar flags).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import torch

from ..hostkit import loaders
from ..hostkit.loaders import HOST_CLASSES
from .tiny_models import VAE_DDCONFIG as SD_VAE_DDCONFIG
from .tiny_models import _calm_output, _fill, _generator, _smooth_in_time, _text_config, init_weights

FLOW_FAMILIES: tuple[str, ...] = ("flux-dev", "flux-schnell", "sd3", "qwen-image", "wan21", "wan22")

# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------

_T5_VOCAB = 32128  # the real T5 vocabulary, so that the host's T5 tokenizer works unchanged
T5_WIDTH = 64
CLIP_L_WIDTH = 32
CLIP_G_WIDTH = 64
SD3_CONTEXT_WIDTH = 4096  # sd3_clip pads the CLIP context to this width (hard-coded in the host)
SD3_DEPTH = 2  # MMDiT: hidden = 64 * depth, heads = depth
SD3_POS_EMBED_MAX = 48  # patches a side in the position table
SD3_SAMPLE_SIZE = 32  # diffusers' sample_size: the table's base size is sample_size // patch
_QWEN_VOCAB = 152064  # Qwen2.5-VL's vocabulary (the host's Qwen2 tokenizer's ids)
QWEN_TEXT_WIDTH = 64  # the tiny Qwen2.5-VL's width: the text context's (the real one's is 3584)
QWEN_DEPTH = 2  # Qwen-Image's blocks (the real one has 60)
#: the tiny Qwen-Image's Wan 2.1 VAE (``comfy.ldm.wan.vae.WanVAE``): base width 8 (the real one's is 96)
QWEN_VAE = {"dim": 8, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1, "attn_scales": [],
            "temperal_downsample": [False, True, True], "dropout": 0.0}
#: the tiny vision tower standing in for Qwen2.5-VL's (1280 wide, 32 layers: 0.6 G parameters), which the host
#: builds whatever the config (``llama.Qwen25_7BVLI``) and Qwen-Image-Edit's image prompts run through
QWEN_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "num_layers": 2}
WAN_DEPTH = 2  # Wan's blocks (Wan 2.1 1.3B has 30, 14B 40)
WAN_TEXT_WIDTH = 64  # the tiny UMT5's width: Wan's text_dim (the real UMT5-XXL's is 4096)
_PILE_VOCAB = 32000  # the host's bundled Pile-T5 SentencePiece model, the tiny UMT5's tokenizer


def _t5_config() -> dict:
    """Overrides for the host's T5-XXL json config (``t5xxl_model_config``)."""
    return {"d_model": T5_WIDTH, "d_kv": 16, "num_heads": 4, "d_ff": 2 * T5_WIDTH, "num_layers": 2,
            "vocab_size": _T5_VOCAB}


def _flux_config(guidance_embed: bool) -> dict:
    """A shrunk Flux config in the form ``comfy.model_detection`` produces."""
    return {
        "image_model": "flux",
        "in_channels": 16,
        "out_channels": 16,
        "patch_size": 2,
        "vec_in_dim": CLIP_L_WIDTH,
        "context_in_dim": T5_WIDTH,
        "hidden_size": 64,
        "mlp_ratio": 4.0,  # the host's diffusers key map assumes 4 (single blocks' fused linear1)
        "num_heads": 2,
        "depth": 2,
        "depth_single_blocks": 2,
        "axes_dim": [8, 12, 12],  # sums to hidden_size // num_heads, as the host requires
        "theta": 10000,
        "qkv_bias": True,
        "guidance_embed": guidance_embed,
    }


def _qwen_image_config() -> dict:
    """A shrunk Qwen-Image config: ``comfy.model_detection`` reads only ``in_channels`` and ``num_layers`` from a
    file (the widths are the class defaults, 24 heads of 128 over a 3584-wide text), so these go to the class."""
    return {"image_model": "qwen_image", "in_channels": 64, "out_channels": 16, "patch_size": 2,
            "num_layers": QWEN_DEPTH, "attention_head_dim": 32, "num_attention_heads": 2,
            "joint_attention_dim": QWEN_TEXT_WIDTH, "axes_dims_rope": (8, 12, 12)}


def _qwen_text_config() -> dict:
    """Overrides for the host's Qwen2.5-VL 7B config (``llama.Qwen25_7BVLI_Config``; its head width, 128, and
    its rope sections are class constants): the real vocabulary, so that the host's tokenizer works unchanged."""
    return {"vocab_size": _QWEN_VOCAB, "hidden_size": QWEN_TEXT_WIDTH, "intermediate_size": 2 * QWEN_TEXT_WIDTH,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1}


def _wan_config(channels: int = 16) -> dict:
    """A shrunk Wan 2.1 T2V config in the form ``comfy.model_detection`` produces (1.3B: dim 1536, 12 heads of 128,
    ffn 8960, 30 blocks; 14B: dim 5120, 40 heads, 40 blocks): 2 heads of 32 (rope axes 12 + 10 + 10 over frames,
    rows, columns, as the host splits a head), patch 1 x 2 x 2 over 16 latent channels, text 64 wide."""
    return {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "text_len": 512, "in_dim": channels,
            "dim": 64, "ffn_dim": 128, "freq_dim": 256, "text_dim": WAN_TEXT_WIDTH, "out_dim": channels, "num_heads": 2,
            "num_layers": WAN_DEPTH, "eps": 1e-6}


def _umt5_config() -> dict:
    """Overrides for the host's UMT5-XXL json config (``umt5_config_xxl.json``): 2 layers, 64 wide, the vocabulary
    of the tokenizer it is given (the host's Pile-T5 SentencePiece model: 32000 pieces)."""
    return {"d_model": WAN_TEXT_WIDTH, "d_kv": 16, "num_heads": 4, "d_ff": 2 * WAN_TEXT_WIDTH, "num_layers": 2,
            "vocab_size": _PILE_VOCAB}


def _sd3_config() -> dict:
    """A shrunk SD3 MMDiT config in the form ``comfy.model_detection`` produces."""
    hidden = 64 * SD3_DEPTH
    return {
        "in_channels": 16,
        "out_channels": 16,
        "patch_size": 2,
        "depth": SD3_DEPTH,
        "num_blocks": SD3_DEPTH,  # the host's diffusers key map assumes num_blocks == depth
        "input_size": None,
        "adm_in_channels": CLIP_L_WIDTH + CLIP_G_WIDTH,
        "context_embedder_config": {"target": "torch.nn.Linear",
                                    "params": {"in_features": SD3_CONTEXT_WIDTH, "out_features": hidden}},
        "num_patches": SD3_POS_EMBED_MAX ** 2,
        "pos_embed_max_size": SD3_POS_EMBED_MAX,
        "pos_embed_scaling_factor": None,
        "x_block_self_attn_layers": [],
    }


@dataclass(frozen=True)
class FlowFamilySpec:
    """How one flow family is put together (also read by ``tests/reference/flow_diffusers.py``)."""

    name: str
    config_class: type  # the host's config class (``loaders.HOST_CLASSES``)
    unet_config: dict
    unet_overrides: dict
    model_type: Enum  # the host's ModelType
    clip_target: tuple  # (tokenizer class, text-encoder class)
    text_configs: dict = field(default_factory=dict)  # model_options key -> overrides
    latent_scale: float = 1.0  # the host latent format's scale and shift factors
    latent_shift: float = 0.0


SPECS: dict[str, FlowFamilySpec] = {
    "flux-dev": FlowFamilySpec(
        name="flux-dev", unet_config=_flux_config(True), unet_overrides={},
        **HOST_CLASSES["flux-dev"]._asdict(),
        text_configs={"clip_l_model_config": _text_config(CLIP_L_WIDTH, 2, "quick_gelu"),
                      "t5xxl_model_config": _t5_config()},
        latent_scale=0.3611, latent_shift=0.1159,
    ),
    "flux-schnell": FlowFamilySpec(
        name="flux-schnell", unet_config=_flux_config(False), unet_overrides={},
        **HOST_CLASSES["flux-schnell"]._asdict(),
        text_configs={"clip_l_model_config": _text_config(CLIP_L_WIDTH, 2, "quick_gelu"),
                      "t5xxl_model_config": _t5_config()},
        latent_scale=0.3611, latent_shift=0.1159,
    ),
    "sd3": FlowFamilySpec(
        name="sd3", unet_config=_sd3_config(), unet_overrides={},
        **HOST_CLASSES["sd3"]._asdict(),
        text_configs={"clip_l_model_config": _text_config(CLIP_L_WIDTH, 2, "quick_gelu"),
                      "clip_g_model_config": _text_config(CLIP_G_WIDTH, 4, "gelu")},
        latent_scale=1.5305, latent_shift=0.0609,
    ),
    "qwen-image": FlowFamilySpec(
        name="qwen-image", unet_config=_qwen_image_config(), unet_overrides={},
        **HOST_CLASSES["qwen-image"]._asdict(),
        text_configs={"qwen25_7b_model_config": _qwen_text_config()},
    ),
    "wan21": FlowFamilySpec(
        name="wan21", unet_config=_wan_config(), unet_overrides={},
        **HOST_CLASSES["wan21"]._asdict(),
        text_configs={"umt5xxl_model_config": _umt5_config()},
    ),
    # Wan 2.2 TI2V 5B (the host's WAN22_T2V): the same transformer on the Wan 2.2 VAE's 48 channels
    "wan22": FlowFamilySpec(
        name="wan22", unet_config=_wan_config(48), unet_overrides={},
        **HOST_CLASSES["wan22"]._asdict(),
        text_configs={"umt5xxl_model_config": _umt5_config()},
    ),
}

VAE_DDCONFIG: dict = {**SD_VAE_DDCONFIG, "z_channels": 16}   # the SD tiny VAE with 16 latent channels
VAE_EMBED_DIM = 16
_VAE_RAW_STD = 0.6  # about the spread of the random encoder's latent mean before scaling (measured)
#: the same of the tiny Wan VAE's encoder mean: measured on smooth 128 px pictures (VAE Encode, 6 weight seeds x 8
#: pictures; tests/host/test_tiny_flow_models.py), the model then sees latents of spread 0.8 - 1.3, 1.0 on average
#: (0.25, a first guess, gave 1.35: 1.1 - 1.75)
_WAN_RAW_STD = 0.34

# ---------------------------------------------------------------------------------------------
# Seeded initialisation
# ---------------------------------------------------------------------------------------------


def sincos_pos_embed(dim: int, grid_size: int, base_size: int) -> torch.Tensor:
    """SD3's fixed 2-D sin-cos position table, (1, grid_size^2, dim), row-major over the patch grid:
    positions ``arange(grid_size) * base_size / grid_size``, the first half of the features from the
    column coordinate, the second from the row (each ``sin`` then ``cos`` over ``dim / 4``
    frequencies ``10000^(-k / (dim / 4))``). As diffusers' ``get_2d_sincos_pos_embed`` with
    interpolation scale 1."""
    pos = torch.arange(grid_size, dtype=torch.float64) / (grid_size / base_size)
    col, row = torch.meshgrid(pos, pos, indexing="xy")  # col varies along the row, as in diffusers

    def one_d(d, coords):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = coords.reshape(-1)[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    emb = torch.cat([one_d(dim // 2, col), one_d(dim // 2, row)], dim=1)
    return emb.to(torch.float32)[None]


# The final projection's scale (``tiny_models._calm_output``). A rectified flow integrates the velocity
# over sigma in [0, 1] (not the log-range of the SD schedules), so step errors grow by about exp(J), J
# the velocity's gain in the latent: a random DiT at full gain gives a velocity of O(1) spread that
# depends on the latent about as strongly as on the noise, and inversion drifts far. 0.3 keeps the
# prediction O(1)-ish and clearly dependent on input, time, guidance and text while Euler inversion
# then reconstruction stays close: measured at 28 steps over sigma 0 -> 1 -> 0 on a 32 x 32 latent,
# relative latent error 0.5 % (flux-dev), 0.7 % (flux-schnell), 0.7 % (sd3), 0.4 % (qwen-image)
# (``tests/host/test_tiny_flow_models.py`` checks a 10-step one).
_OUTPUT_GAIN = 0.3

# Wan's: its shift of 8 puts the last steps' sigma jumps at the clean end, where a velocity of Flux's gain makes Euler's
# retrace drift (a 3-frame 8 x 8 clip latent, 6 steps: 23 % at 0.3, 11 % at 0.15, 7 % at 0.1; 28 steps 7.9 %, 3.7 %,
# 2.5 %; RF-Solver 6 steps 5.1 %, 1.3 %, 0.6 %), while the prediction's change with the prompt stays 4 % at 0.1
_WAN_OUTPUT_GAIN = 0.1

# Qwen-Image's text keys' RMS-norm gain (``attn.norm_added_k``), times the drawn one. Qwen-Image reads the text
# through the joint attention alone (no pooled vector, no text in its modulation) and its text is not padded:
# a dozen text keys among the image's hundreds, which a random model weighs as any key, so the velocity hardly
# depends on the prompt (relative change from "a photo of a cat" to "a painting of a dog": 0.3 % on a 32 x 32
# latent, 1 % on 16 x 16) and FlowEdit's or Prompt-to-Prompt's edits hardly move anything. Tripled, the text
# keys' logits spread three times as wide and the image attends to them as a trained model does to the words
# that matter: 4 - 5 % on 32 x 32, 6 - 8 % on 16 x 16 (Flux's and SD3's tiny models: 18 - 30 %, partly through
# their pooled vector), the velocity as smooth in sigma and the 10-step Euler retrace as close (1.2 %).
_QWEN_TEXT_KEY_GAIN = 3.0


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def _spec(family: str) -> FlowFamilySpec:
    if family not in SPECS:
        raise ValueError(f"unknown tiny flow model family {family!r}; expected one of {FLOW_FAMILIES}")
    return SPECS[family]


def build_tiny_flow_unet(family: str, seed: int = 0, single_blocks: int | None = None,
                         double_blocks: int | None = None):
    """The family's denoiser (``model_base.Flux`` / ``SD3`` / ``QwenImage``) in a ModelPatcher; a Flux one
    with ``single_blocks`` single-stream blocks where given (RF-Solver-Edit's parity needs Flux's
    block numbers: it shares from block 20); ``double_blocks`` Flux's double-stream or SD3's (or
    Qwen-Image's) joint blocks where given (the tiny width at a real model's depth: what a step
    dispatches grows with the blocks, not the width)."""
    spec = _spec(family)
    unet_config = dict(spec.unet_config)
    if single_blocks is not None:
        if "depth_single_blocks" not in unet_config:
            raise ValueError(f"{family} has no single-stream blocks")
        unet_config["depth_single_blocks"] = single_blocks
    if double_blocks is not None:
        unet_config[{"sd3": "num_blocks", "qwen-image": "num_layers", "wan21": "num_layers",
                     "wan22": "num_layers"}.get(family, "depth")] = \
            double_blocks
    host_config = (spec.config_class, unet_config, spec.unet_overrides, spec.model_type)
    model = loaders.empty_unet(*host_config)
    net = model.diffusion_model
    if family == "sd3":   # a buffer, not drawn: set before init_weights checks every buffer is finite
        with torch.no_grad():
            net.pos_embed.copy_(sincos_pos_embed(net.hidden_size, SD3_POS_EMBED_MAX, SD3_SAMPLE_SIZE // net.patch_size))
    g = _generator(spec.name, "unet", seed)
    # Wan's blocks' and head's modulation tables (bare parameters added to the time projection): N(0, 1 / dim), as
    # Wan's own initialisation draws them, after every other parameter
    modulation = tuple(n for n, _ in net.named_parameters() if n.endswith("modulation"))
    init_weights(net, g, skip=modulation)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in modulation:
                _fill(p, g, p.shape[-1] ** -0.5)
        if family == "sd3":
            _smooth_in_time(net.t_embedder.mlp[0].weight)
        elif family == "qwen-image":
            _smooth_in_time(net.time_text_embed.timestep_embedder.linear_1.weight)
            for block in net.transformer_blocks:
                block.attn.norm_added_k.weight.mul_(_QWEN_TEXT_KEY_GAIN)
        elif family in ("wan21", "wan22"):
            _smooth_in_time(net.time_embedding[0].weight)
        else:
            _smooth_in_time(net.time_in.in_layer.weight)
            if spec.unet_config["guidance_embed"]:
                _smooth_in_time(net.guidance_in.in_layer.weight)
    wan = family in ("wan21", "wan22")
    head = {"qwen-image": lambda: net.proj_out}.get(family, lambda: net.head.head if wan else net.final_layer.linear)
    _calm_output(head(), _WAN_OUTPUT_GAIN if wan else _OUTPUT_GAIN)
    return loaders.built_unet(*host_config, model)


def build_tiny_flow_clip(family: str, seed: int = 0, tokenizer_data: dict | None = None):
    """The family's text encoders as a host ``comfy.sd.CLIP`` (real tokenizers), in float32;
    ``tokenizer_data`` as ``loaders.text_encoder`` takes it."""
    spec = _spec(family)
    if family in ("wan21", "wan22"):   # UMT5's tokenizer reads its SentencePiece model from the text encoder's file
        tokenizer_data = {"spiece_model": loaders.pile_t5_spiece_model(), **(tokenizer_data or {})}
    clip = loaders.text_encoder(spec.clip_target, spec.text_configs, tokenizer_data)
    if family == "qwen-image":
        _tiny_vision_tower(clip)
    skip = tuple(n for n, _ in clip.cond_stage_model.named_parameters() if n.endswith("logit_scale"))
    init_weights(clip.cond_stage_model, _generator(spec.name, "clip", seed), skip=skip)
    return clip


def _tiny_vision_tower(clip) -> None:
    """Swap the host's Qwen2.5-VL vision tower (built uninitialised at its real size) for the host's class at
    ``QWEN_VISION``'s size, its output as wide as the tiny text model."""
    loaders.replace_qwen_vision_tower(clip, output_hidden_size=QWEN_TEXT_WIDTH, **QWEN_VISION)


def _tiny_wan_vae(seed: int, family: str = "qwen-image"):
    """Qwen-Image's VAE: the host's Wan 2.1 autoencoder at ``QWEN_VAE``'s size, its latent brought to about the
    spread and mean the host's latent format (``latent_formats.Wan21``: a mean and spread per channel) expects."""
    ae = loaders.wan_autoencoder(QWEN_VAE)
    init_weights(ae, _generator(family, "vae", seed))
    mean, std = loaders.wan21_latent_stats()
    with torch.no_grad():   # the encoder's mean (conv1's first half) to the format's mean and spread; conv2 undoes it
        gain = std / _WAN_RAW_STD
        ae.conv1.weight[:16].mul_(gain.view(-1, 1, 1, 1, 1))
        ae.conv1.bias[:16].mul_(gain).add_(mean)
        ae.conv2.weight.div_(gain.view(1, -1, 1, 1, 1))
        ae.conv2.bias.sub_(ae.conv2.weight.sum(dim=(1, 2, 3, 4)) * mean)
    return loaders.wan_vae(ae)


#: the tiny Wan 2.2 VAE (``comfy.ldm.wan.vae2_2.WanVAE``): base width 8 (the real one's 160, decoder 256)
WAN22_VAE = {"dim": 8, "dec_dim": 8, "z_dim": 48, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1, "attn_scales": [],
             "temperal_downsample": [False, True, True], "dropout": 0.0}
_WAN22_RAW_STD = 0.3   # its random encoder's mean's spread on smooth pictures (0.32 on a 5-frame 64 px clip)


def _tiny_wan22_vae(seed: int):
    """Wan 2.2's VAE at ``WAN22_VAE``'s size, its latent brought to about the mean and spread of the host's latent
    format (``latent_formats.Wan22``), as ``_tiny_wan_vae`` does Wan 2.1's."""
    ae = loaders.wan22_autoencoder(WAN22_VAE)
    init_weights(ae, _generator("wan22", "vae", seed))
    mean, std = loaders.wan22_latent_stats()
    with torch.no_grad():
        gain = std / _WAN22_RAW_STD
        ae.conv1.weight[:48].mul_(gain.view(-1, 1, 1, 1, 1))
        ae.conv1.bias[:48].mul_(gain).add_(mean)
        ae.conv2.weight.div_(gain.view(1, -1, 1, 1, 1))
        ae.conv2.bias.sub_(ae.conv2.weight.sum(dim=(1, 2, 3, 4)) * mean)
    return loaders.wan22_vae(ae)


def build_tiny_flow_vae(family: str, seed: int = 0):
    """A small 16-channel KL autoencoder (8x downscale) as a host ``comfy.sd.VAE``; Qwen-Image's: a small Wan 2.1
    autoencoder."""
    spec = _spec(family)
    if family in ("qwen-image", "wan21"):
        return _tiny_wan_vae(seed, family)
    if family == "wan22":
        return _tiny_wan22_vae(seed)
    ae = loaders.kl_autoencoder(VAE_DDCONFIG, VAE_EMBED_DIM)
    init_weights(ae, _generator(family, "vae", seed))
    with torch.no_grad():
        # The latent's spread and mean what the family's latent format undoes; post_quant_conv undoes them.
        gain = 1.0 / (spec.latent_scale * _VAE_RAW_STD)
        ae.quant_conv.weight.mul_(gain)
        ae.quant_conv.bias[:VAE_EMBED_DIM].mul_(gain).add_(spec.latent_shift)
        ae.post_quant_conv.weight.div_(gain)
        ae.post_quant_conv.bias.sub_(ae.post_quant_conv.weight.sum(dim=(1, 2, 3)) * spec.latent_shift)
    return loaders.built_kl_vae(ae, VAE_DDCONFIG, VAE_EMBED_DIM)


def build_tiny_flow_models(family: str, seed: int = 0, single_blocks: int | None = None,
                           double_blocks: int | None = None) -> tuple:
    """(MODEL, CLIP, VAE) of ``family`` ("flux-dev", "flux-schnell", "sd3", "qwen-image", "wan21", "wan22") with weights
    drawn from ``seed``: a host ModelPatcher, ``comfy.sd.CLIP`` and ``comfy.sd.VAE``.

    Fresh objects on every call; the same seed gives bit-identical weights.
    """
    return (build_tiny_flow_unet(family, seed, single_blocks, double_blocks), build_tiny_flow_clip(family, seed),
            build_tiny_flow_vae(family, seed))
