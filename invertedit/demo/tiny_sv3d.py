"""A tiny SV3D (Stable Video 3D) with seeded random weights, built from ComfyUI's own classes.

What it is
    What the host's ImageOnlyCheckpointLoader gives for ``sv3d_u.safetensors`` (MODEL, CLIP_VISION, VAE), shrunk:
    the host's SV3D_u config (``comfy.supported_models.SV3D_u``: ``model_base.SV3D_u``, the host's ``VideoUNet`` with
    temporal res blocks and temporal attention, EDM v prediction, sigmas 0.002 to 700, its ``adm`` the 256-wide
    embedding of the augmentation level), a host ``ClipVisionModel`` (the ViT-H/14 layout of
    ``clip_vision_config_h.json``, shrunk) whose pooled, projected embedding is the UNet's cross-attention context,
    and an SD-style KL VAE (8x, 4 channels) whose latent of the input image the UNet reads concatenated to its input
    (``concat_latent_image``: 4 + 4 = 8 input channels). The stock CLIPVisionEncode and SV3D_Conditioning take them
    unchanged, so the SV3D workflow runs on them as it would on the real files. Random weights: the orbit views are
    noise; it exists to run the mechanics (the video UNet's one batched call of all views, their sizes and dtypes)
    in seconds on a CPU. Never judge pictures with it.

Sizes (the real model's in brackets)
    UNet: 32 base channels [320], 2 levels [4] of 1 res block [2], channel_mult 1-2 [1-2-4-4], one spatial + one
    temporal transformer block a level and in the middle, heads of 16 channels [64], context 32 wide [1024]; about
    2.1 M parameters [1.5 G]. CLIP vision: 32 wide [1280], 2 layers [32], 2 heads [16], patches of 14 on a 28 px
    input [224] (the host's preprocessing resizes and centre-crops to it), projection 32 [1024]. VAE: the tiny SD
    VAE's layout (``tiny_models.VAE_DDCONFIG``), its own weights.

How it is built
    As ``tiny_models`` builds the SD families: through ``hostkit/loaders.py`` (``IMAGE_ONLY_CLASSES["sv3d_u"]``,
    ``empty_unet`` / ``load_unet``: loaded as the host loads a float32 checkpoint, fp16 on a CUDA GPU;
    ``clip_vision``; ``kl_autoencoder`` / ``kl_vae``), every parameter drawn on the CPU in float32 from one generator
    per component and seed (``tiny_models.init_weights``; the same seed gives bit-identical weights), the first time
    layer damped on fast frequencies and the output scaled by 0.1 as the SD ones. The temporal blocks' learned mixing
    factors (``AlphaBlender.mix_factor``) keep the host's initial value (``merge_factor`` 0: half spatial, half
    temporal).

Real checkpoints (for the workflow's notes)
    ``sv3d_u.safetensors`` (an orbit of 21 views without camera input, at the elevation it was trained on) and
    ``sv3d_p.safetensors`` (the orbit's elevation and azimuths as ``adm``: the host's SV3D_Conditioning passes its
    elevation and azimuths ``i * 360 / (video_frames - 1)``; the authors' script, ``(i + 1) * 360 / 21`` from the
    input's view), from huggingface.co/stabilityai/sv3d (gated: accept its licence), about 9 GB each (float32: the
    1.52 B-parameter video UNet with the CLIP ViT-H image encoder and the VAE inside), in ``models/checkpoints``;
    trained at 576 x 576, 21 frames.
"""
from __future__ import annotations

import torch

from ..hostkit import loaders
from .tiny_models import VAE_DDCONFIG, VAE_EMBED_DIM, _calm_output, _generator, _LATENT_STD, _smooth_in_time, init_weights

FAMILY = "sv3d"

#: the tiny image encoder's config, in the host's json form (``comfy/clip_vision_config_h.json``'s keys)
CLIP_VISION_CONFIG: dict = {
    "attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "gelu", "hidden_size": 32, "image_size": 28,
    "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 64, "layer_norm_eps": 1e-05,
    "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3, "num_hidden_layers": 2,
    "patch_size": 14, "projection_dim": 32,
}

#: the tiny video UNet's config in the form ``comfy.model_detection`` gives for an SV3D checkpoint
UNET_CONFIG: dict = {
    "use_checkpoint": False, "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 32,
    "num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth": [1, 1], "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1], "use_spatial_transformer": True, "legacy": False,
    "use_linear_in_transformer": True, "context_dim": CLIP_VISION_CONFIG["projection_dim"],
    "num_classes": "sequential", "adm_in_channels": 256,   # SV3D_u's adm: Timestep(256) of the augmentation level
    # the video keys model_detection sets for SVD / SV3D checkpoints
    "extra_ff_mix_layer": True, "use_spatial_context": True, "merge_strategy": "learned_with_images",
    "merge_factor": 0.0, "video_kernel_size": [3, 1, 1], "use_temporal_resblock": True,
    "use_temporal_attention": True, "disable_temporal_crossattention": False,
}
UNET_OVERRIDES: dict = {"num_heads": -1, "num_head_channels": 16}


def _unet(seed: int):
    config_class, model_type = loaders.IMAGE_ONLY_CLASSES["sv3d_u"]
    host_config = (config_class, UNET_CONFIG, UNET_OVERRIDES, model_type)
    model = loaders.empty_unet(*host_config)
    unet = model.diffusion_model
    mix = tuple(n for n, _ in unet.named_parameters() if n.endswith("mix_factor"))   # the host's merge_factor, kept
    init_weights(unet, _generator(FAMILY, "unet", seed), skip=mix)
    _smooth_in_time(unet.time_embed[0].weight)
    _calm_output(unet.out[-1])
    return loaders.built_unet(*host_config, model)


def _clip_vision(seed: int):
    clip_vision = loaders.clip_vision(CLIP_VISION_CONFIG)
    module = clip_vision.model
    g = _generator(FAMILY, "clip_vision", seed)
    class_embedding = tuple(n for n, _ in module.named_parameters() if n.endswith("class_embedding"))
    init_weights(module, g, skip=class_embedding)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in class_embedding:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype))
    return clip_vision


def _vae(seed: int):
    ae = loaders.kl_autoencoder(VAE_DDCONFIG, VAE_EMBED_DIM)
    init_weights(ae, _generator(FAMILY, "vae", seed))
    with torch.no_grad():
        ae.quant_conv.weight.mul_(_LATENT_STD)
        ae.post_quant_conv.weight.div_(_LATENT_STD)
    return loaders.built_kl_vae(ae, VAE_DDCONFIG, VAE_EMBED_DIM)


def build_tiny_sv3d(seed: int = 0) -> tuple:
    """(MODEL, CLIP_VISION, VAE) of a tiny random SV3D_u, in ImageOnlyCheckpointLoader's order: a host ModelPatcher
    (``model_base.SV3D_u``), a host ``ClipVisionModel`` and a host ``comfy.sd.VAE``. Fresh objects on every call;
    the same seed gives bit-identical weights."""
    return _unet(seed), _clip_vision(seed), _vae(seed)
