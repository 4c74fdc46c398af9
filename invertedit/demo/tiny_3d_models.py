"""A tiny Hunyuan3D-2 (multi-view) with seeded random weights, built from ComfyUI's own classes (issue 83).

What it is
    What the host's ImageOnlyCheckpointLoader gives for ``hunyuan3d-dit-v2-mv_fp16.safetensors`` (MODEL, CLIP_VISION,
    VAE), shrunk: the host's Hunyuan3D-2 config (``comfy.supported_models.Hunyuan3Dv2``: ``model_base.Hunyuan3Dv2`` on
    ``comfy/ldm/hunyuan3d/model.py``'s DiT, Flux's double- and single-stream blocks without position embedding over
    the shape's latent tokens and the views' image tokens, rectified flow with shift 1), a host ``ClipVisionModel``
    of the DINOv2 layout Hunyuan3D-2 conditions on (``comfy/image_encoders/dino2.py``, ``dino2_giant.json``'s keys,
    shrunk), and the host's ShapeVAE (``comfy/ldm/hunyuan3d/vae.py``) in a host ``comfy.sd.VAE`` as the host's loader
    sets it up. The stock CLIPVisionEncode, Hunyuan3Dv2ConditioningMultiView, EmptyLatentHunyuan3Dv2, KSampler,
    VAEDecodeHunyuan3D, VoxelToMesh and SaveGLB take them unchanged. Random weights: the shape is noise; the model
    exists to run the mechanics (the views' conditioning, the DiT's batched call, the volume decode, a mesh file) in
    seconds on a CPU. Never judge shapes with it.

Sizes (the real model's in brackets)
    DiT: hidden 64 [1024] in 2 heads [16], 1 double-stream [16] + 1 single-stream block [32], 64 latent channels
    [64], context 32 wide [1536]: about 0.3 M parameters [3.3 G]. DINOv2: 32 wide [1536], 2 layers [40], 2 heads
    [24], SwiGLU feed-forward as the giant's, patches of 14 on the host's fixed 518 px input (its position table has
    37 x 37 + 1 entries whatever the width: 1370 tokens a view). ShapeVAE: width 32 [1024], 2 heads [16], 1 decoder
    layer [16], 1 encoder layer [8] (the host never encodes), 64 latent channels [64].

The mesh
    VAEDecodeHunyuan3D queries the geometry decoder on an (r + 1)^3 grid (``octree_resolution`` r) and the host's
    VAE maps each logit g to ``clamp((g + 1) / 2, 0, 1)`` (its default ``process_output``); VoxelToMesh keeps the cells
    above its threshold (0.6: g > 0.2). A random decoder's logits would sit around 0 at any spread, so its output
    layer's weight is scaled to norm ``OCCUPANCY_SPREAD`` (1.0; its bias 0), so the logits spread about 1 around 0 and
    about half the cells are inside: a non-empty (noise) mesh at every seed and resolution tried (measured on 4 random
    64 px views, 4 steps at cfg 7.5: weight seeds 0-3, 43-69 % of the cells inside at r 16 and at r 32, 3200-3600
    vertices at r 16, 19000-25000 at r 32; tests/host/test_views_to_3d.py checks seed 0 at r 16, glb_checks the shipped
    workflows' meshes). The real model's cells inside are its shape's.
"""
from __future__ import annotations

import torch

from ..hostkit import loaders, views_3d
from .tiny_models import _calm_output, _fill, _generator, init_weights

FAMILY = "hunyuan3d2"

#: the tiny DINOv2's config, in the host's json form (``comfy/image_encoders/dino2_giant.json``'s keys)
CLIP_VISION_CONFIG: dict = {
    "attention_probs_dropout_prob": 0.0, "drop_path_rate": 0.0, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
    "hidden_size": 32, "image_size": 518, "initializer_range": 0.02, "layer_norm_eps": 1e-06, "layerscale_value": 1.0,
    "mlp_ratio": 4, "model_type": "dinov2", "num_attention_heads": 2, "num_channels": 3, "num_hidden_layers": 2,
    "patch_size": 14, "qkv_bias": True, "use_swiglu_ffn": True,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
}

#: the tiny DiT's config in the form ``comfy.model_detection`` gives for a Hunyuan3D-2 checkpoint
UNET_CONFIG: dict = {
    "image_model": "hunyuan3d2", "in_channels": 64, "context_in_dim": CLIP_VISION_CONFIG["hidden_size"],
    "hidden_size": 64, "mlp_ratio": 4.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1, "qkv_bias": True,
    "guidance_embed": False,
}

#: the tiny ShapeVAE's arguments (``comfy.ldm.hunyuan3d.vae.ShapeVAE``; the host builds the real one with its defaults)
VAE_CONFIG: dict = {
    "num_latents": 64, "embed_dim": 64, "width": 32, "heads": 2, "num_decoder_layers": 1, "num_encoder_layers": 1,
    "pc_size": 256, "downsample_ratio": 4,
}

#: the geometry decoder's logit spread (the module's docstring: about half the grid's cells inside)
OCCUPANCY_SPREAD = 1.0

_OUTPUT_GAIN = 0.3   # the DiT's final layer: a velocity of O(0.3) spread (as the tiny flow DiTs)


def _unet(seed: int):
    config_class, model_type, _ = views_3d.HUNYUAN3D_CLASSES
    host_config = (config_class, UNET_CONFIG, {}, model_type)
    model = loaders.empty_unet(*host_config)
    net = model.diffusion_model
    init_weights(net, _generator(FAMILY, "unet", seed))
    _calm_output(net.final_layer.linear, _OUTPUT_GAIN)
    return loaders.built_unet(*host_config, model)


def _clip_vision(seed: int):
    """The tiny DINOv2 as a host ``ClipVisionModel``; its bare parameters (class token, mask token, position table,
    layer scales) drawn as DINOv2 initialises them: tokens and table N(0, 0.02^2), layer scales 1."""
    clip_vision = loaders.clip_vision(CLIP_VISION_CONFIG)
    model = clip_vision.model
    bare = tuple(n for n, _ in model.named_parameters() if n.rsplit(".", 1)[-1] in
                 ("cls_token", "mask_token", "position_embeddings", "lambda1"))
    g = _generator(FAMILY, "clip_vision", seed)
    init_weights(model, g, skip=bare)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in bare:
                if name.endswith("lambda1"):
                    p.fill_(CLIP_VISION_CONFIG["layerscale_value"])
                else:
                    _fill(p, g, CLIP_VISION_CONFIG["initializer_range"])
    return clip_vision


def _vae(seed: int):
    module = views_3d.shape_autoencoder(VAE_CONFIG)
    init_weights(module, _generator(FAMILY, "vae", seed))
    with torch.no_grad():   # the occupancy logits' spread (the module's docstring)
        out = module.geo_decoder.output_proj
        out.bias.zero_()
        out.weight.mul_(OCCUPANCY_SPREAD / out.weight.norm())
    return views_3d.shape_vae(module)


def build_tiny_hunyuan3d(seed: int = 0) -> tuple:
    """(MODEL, CLIP_VISION, VAE) of the tiny Hunyuan3D-2, as ImageOnlyCheckpointLoader gives them, with weights drawn
    from ``seed``. Fresh objects on every call; the same seed gives bit-identical weights."""
    return _unet(seed), _clip_vision(seed), _vae(seed)


#: the families the Demo 3D Model builds: name -> builder of (MODEL, CLIP_VISION, VAE) from a seed
def _sv3d(seed: int) -> tuple:
    from . import tiny_sv3d   # another part's model (issue 83's SV3D), imported when asked for

    return tiny_sv3d.build_tiny_sv3d(seed)


FAMILIES_3D = {FAMILY: build_tiny_hunyuan3d, "sv3d": _sv3d}
