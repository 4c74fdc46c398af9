"""Building host models from a config and a state dict, as the host's checkpoint loaders do: the one
place the pack's built-in models (``invertedit/demo/``: the tiny random-weight models and the Toy
World models) reach the host's classes.

- ``HOST_CLASSES``: the host's config class, model type and (tokenizer, text encoder) of each family
  the built-in models copy, by family name: the Stable Diffusion UNets (``sd1``, ``sd2-v``, ``sdxl``)
  and the flow-matching DiTs (``flux-dev``, ``flux-schnell``, ``sd3``, ``qwen-image``).
- ``empty_unet`` / ``load_unet``: a host model from a denoiser config (``BaseModel`` / ``SDXL`` for the
  UNet families, what the config class's ``get_model`` builds for the others: ``model_base.Flux``,
  ``model_base.SD3``), empty (float32, on the CPU, to be initialised) or loaded from a state dict in the
  dtype the host picks for a checkpoint (``host_unet_dtype``), in a frozen ``ModelPatcher``
  (``frozen_patcher``).
- ``text_encoder``: a host ``comfy.sd.CLIP`` from a (tokenizer, text encoder) pair and config overrides.
- ``kl_autoencoder`` / ``kl_vae``: the host's ``AutoencoderKL`` module, and a host ``comfy.sd.VAE`` from
  its state dict (4 latent channels for SD, 16 for Flux / SD3: ``z_channels``).
- ``module_vae``: a host ``comfy.sd.VAE`` whose first stage is any autoencoder module.
"""
from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from enum import Enum
from typing import NamedTuple

import torch

import comfy.clip_vision
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.sdxl_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.text_encoders.flux
import comfy.text_encoders.qwen_image
import comfy.text_encoders.sd2_clip
import comfy.text_encoders.sd3_clip
import comfy.text_encoders.wan
import comfy.utils
from comfy.ldm.models.autoencoder import AutoencoderKL


class HostClasses(NamedTuple):
    """The host's classes for one family: how its checkpoint loader would build it."""

    config_class: type       # a comfy.supported_models config class
    model_type: Enum         # comfy.model_base.ModelType
    clip_target: tuple       # (tokenizer class, text-encoder class)


HOST_CLASSES: dict[str, HostClasses] = {
    "sd1": HostClasses(comfy.supported_models.SD15, comfy.model_base.ModelType.EPS,
                       (comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)),
    "sd2-v": HostClasses(comfy.supported_models.SD20, comfy.model_base.ModelType.V_PREDICTION,
                         (comfy.text_encoders.sd2_clip.SD2Tokenizer, comfy.text_encoders.sd2_clip.SD2ClipModel)),
    "sdxl": HostClasses(comfy.supported_models.SDXL, comfy.model_base.ModelType.EPS,
                        (comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel)),
    # Flux.1 dev: guidance-distilled (guidance_embed), the host's Flux sampling (shift 1.15, timestep = sigma).
    "flux-dev": HostClasses(comfy.supported_models.Flux, comfy.model_base.ModelType.FLUX,
                            (comfy.text_encoders.flux.FluxTokenizer, comfy.text_encoders.flux.flux_clip())),
    # Flux.1 schnell: no guidance embedding, discrete flow sampling with shift 1 and multiplier 1.
    "flux-schnell": HostClasses(comfy.supported_models.FluxSchnell, comfy.model_base.ModelType.FLOW,
                                (comfy.text_encoders.flux.FluxTokenizer, comfy.text_encoders.flux.flux_clip())),
    # SD3: MMDiT, discrete flow sampling with shift 3 and multiplier 1000. The text encoder is clip_l +
    # clip_g WITHOUT T5: the host pads the CLIP context to a hard-coded 4096 wide and concatenates T5's
    # tokens to it, so a T5 would have to be 4096 wide (a 32128 x 4096 embedding alone: 0.5 GB).
    "sd3": HostClasses(comfy.supported_models.SD3, comfy.model_base.ModelType.FLOW,
                       (comfy.text_encoders.sd3_clip.SD3Tokenizer,
                        comfy.text_encoders.sd3_clip.sd3_clip(clip_l=True, clip_g=True, t5=False))),
    # Qwen-Image (and Qwen-Image-Edit, the same config): its MMDiT, the host's Flux sampling (shift 1.15,
    # timestep = sigma), Qwen2.5-VL 7B as the text encoder (the prompt inside Qwen-Image's chat template).
    "qwen-image": HostClasses(comfy.supported_models.QwenImage, comfy.model_base.ModelType.FLUX,
                              (comfy.text_encoders.qwen_image.QwenImageTokenizer, comfy.text_encoders.qwen_image.te())),
    # Wan 2.1 T2V (1.3B, 14B; Wan 2.2 A14B T2V's experts are the same config): WanModel, self- then cross-attention to
    # UMT5-XXL's text per block, discrete flow sampling with shift 8 and multiplier 1000 (timestep = 1000 sigma)
    "wan21": HostClasses(comfy.supported_models.WAN21_T2V, comfy.model_base.ModelType.FLOW,
                         (comfy.text_encoders.wan.WanT5Tokenizer, comfy.text_encoders.wan.te())),
    # Wan 2.2 TI2V 5B ("WAN22_T2V" in the host): WanModel on 48 latent channels (the Wan 2.2 VAE: 16x in space)
    "wan22": HostClasses(comfy.supported_models.WAN22_T2V, comfy.model_base.ModelType.FLOW,
                         (comfy.text_encoders.wan.WanT5Tokenizer, comfy.text_encoders.wan.te())),
}

#: The image-conditioned video UNets the pack's built-in models copy (``ImageOnlyCheckpointLoader``'s families: MODEL,
#: CLIP_VISION, VAE): SV3D_u (orbit views, no camera input) and SV3D_p (the orbit's camera as ``adm``), both the host's
#: ``VideoUNet`` predicting an EDM v (``model_base.SV3D_u`` / ``SV3D_p``).
IMAGE_ONLY_CLASSES: dict[str, tuple[type, Enum]] = {
    "sv3d_u": (comfy.supported_models.SV3D_u, comfy.model_base.ModelType.V_PREDICTION_EDM),
    "sv3d_p": (comfy.supported_models.SV3D_p, comfy.model_base.ModelType.V_PREDICTION_EDM),
}

# The UNet families' config classes: their model is built here with the given model type (SD20 would
# guess it from real-sized checkpoint keys); any other config class builds its own (``get_model``).
_UNET_CONFIGS = (comfy.supported_models.SD15, comfy.supported_models.SD20, comfy.supported_models.SDXL)


def model_config(config_class: type, unet_config: dict, unet_overrides: dict):
    """The host config object of ``config_class`` for ``unet_config``, with ``unet_overrides`` applied
    after the class adds its ``unet_extra_config`` (``unet_config`` itself is not changed)."""
    config = config_class(copy.deepcopy(unet_config))
    config.unet_config.update(unet_overrides)
    return config


def _base_model(config, model_type: Enum) -> comfy.model_base.BaseModel:
    """The host model of ``config`` on the CPU. For the UNet families ``SDXL`` (SDXL configs) or
    ``BaseModel``, the model type given directly: SD20 would guess it from real-sized checkpoint keys.
    For any other config (Flux, FluxSchnell, SD3) what its ``get_model`` builds, as the host's
    checkpoint loader does (``model_base.Flux``, ``model_base.SD3``); ``model_type`` must be the one
    it picks."""
    if isinstance(config, _UNET_CONFIGS):
        model_class = comfy.model_base.SDXL if isinstance(config, comfy.supported_models.SDXL) else comfy.model_base.BaseModel
        return model_class(config, model_type=model_type, device=torch.device("cpu"))
    model = config.get_model({}, device=torch.device("cpu"))
    if model.model_type != model_type:
        raise ValueError(f"{type(config).__name__} builds a {model.model_type.name} model, not {model_type.name}")
    return model


def empty_unet(config_class: type, unet_config: dict, unet_overrides: dict, model_type: Enum) -> comfy.model_base.BaseModel:
    """The host model of a UNet config in float32 on the CPU, its weights as the host creates them
    (``torch.empty``): for the caller to initialise."""
    config = model_config(config_class, unet_config, unet_overrides)
    config.set_inference_dtype(torch.float32, None)
    return _base_model(config, model_type)


def host_unet_dtype(config, state_dict: dict) -> tuple[torch.dtype, torch.dtype | None]:
    """Set ``config``'s UNet dtype (weights, manual cast) as the host sets it for a checkpoint
    it loads (``comfy.sd.load_state_dict_guess_config`` / ``load_diffusion_model_state_dict``), from
    the weights in ``state_dict``: ``comfy.model_management.unet_dtype`` with the config's
    ``supported_inference_dtypes``, then ``unet_manual_cast`` for the load device. On a CUDA GPU
    that is fp16 without a manual cast, like a user's SD1.5 checkpoint; on the CPU float32, or with
    ``--force-fp16`` / ``--fp16-unet`` / ``--bf16-unet`` half weights computed in float32 (the CPU
    does not compute in fp16 or bf16 for the host), exactly as a checkpoint loads there.
    Returns ``(dtype, manual_cast_dtype)``."""
    supported = list(config.supported_inference_dtypes)
    dtype = comfy.model_management.unet_dtype(model_params=comfy.utils.calculate_parameters(state_dict),
                                              supported_dtypes=supported,
                                              weight_dtype=comfy.utils.weight_dtype(state_dict))
    manual_cast = comfy.model_management.unet_manual_cast(dtype, comfy.model_management.get_torch_device(),
                                                          config.supported_inference_dtypes)
    config.set_inference_dtype(dtype, manual_cast)
    return dtype, manual_cast


def load_unet(config_class: type, unet_config: dict, unet_overrides: dict, model_type: Enum, state: dict,
              built: comfy.model_base.BaseModel | None = None) -> comfy.model_patcher.ModelPatcher:
    """A UNet loaded from ``state`` (its ``diffusion_model`` weights) as the host loads a checkpoint: in
    the dtype it picks for this device and its flags (``host_unet_dtype``; ``load_state_dict`` casts the
    weights to it), in a frozen ``ModelPatcher``. ``built``, a float32 model from ``empty_unet`` that
    already holds ``state``, is used as it is where the host would load float32 anyway."""
    config = model_config(config_class, unet_config, unet_overrides)
    if built is not None and host_unet_dtype(config, state) == (torch.float32, None):
        return frozen_patcher(built)
    if built is None:
        host_unet_dtype(config, state)
    model = _base_model(config, model_type)
    model.diffusion_model.load_state_dict(state, strict=True)
    return frozen_patcher(model)


def built_unet(config_class: type, unet_config: dict, unet_overrides: dict, model_type: Enum,
               built: comfy.model_base.BaseModel) -> comfy.model_patcher.ModelPatcher:
    """A UNet the pack built and initialised itself (``empty_unet``, seeded in float32 on the CPU: the demo models),
    loaded as the host loads a checkpoint (``load_unet`` of its own weights). The one place its weights are read as
    tensors: a module the pack has just made, never a user's model (which may be quantised or offloaded)."""
    return load_unet(config_class, unet_config, unet_overrides, model_type, built.diffusion_model.state_dict(),
                     built=built)


def built_kl_vae(autoencoder: torch.nn.Module, ddconfig: dict, embed_dim: int) -> comfy.sd.VAE:
    """``kl_vae`` of an ``AutoencoderKL`` the pack built and initialised itself (``kl_autoencoder``: the demo models),
    its weights copied (the host's VAE holds its own module)."""
    return kl_vae({k: v.detach().clone() for k, v in autoencoder.state_dict().items()}, ddconfig, embed_dim)


def frozen_patcher(model: comfy.model_base.BaseModel) -> comfy.model_patcher.ModelPatcher:
    """A host ``BaseModel`` in eval mode without gradients, in a ``ModelPatcher`` on the host's
    devices: how the pack's built-in models reach the graph."""
    model.eval()
    model.requires_grad_(False)
    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )


def text_encoder(clip_target: tuple, text_configs: dict, tokenizer_data: dict | None = None) -> comfy.sd.CLIP:
    """A host ``comfy.sd.CLIP`` of ``clip_target`` (tokenizer class, text-encoder class) with the
    ``clip_*_model_config`` overrides in ``text_configs``, in float32 on the CPU (the host would pick
    fp16 for the text encoder); its weights as the host creates them, for the caller to fill.
    ``tokenizer_data``: the host tokenizers' own options (``t5xxl_min_length``: T5's padding)."""
    import folder_paths

    options = {**{k: dict(v) for k, v in text_configs.items()},
               "dtype": torch.float32, "initial_device": torch.device("cpu")}
    # the embeddings folders, as Load Checkpoint gives them: "embedding:name" in a prompt reads them
    return comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(*clip_target),
                         embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         tokenizer_data=dict(tokenizer_data or {}), model_options=options)


def kl_autoencoder(ddconfig: dict, embed_dim: int) -> torch.nn.Module:
    """The host's KL autoencoder module (``AutoencoderKL``) of ``ddconfig``, uninitialised."""
    return AutoencoderKL(ddconfig=dict(ddconfig), embed_dim=embed_dim)


def kl_vae(state: dict, ddconfig: dict, embed_dim: int) -> comfy.sd.VAE:
    """A host ``comfy.sd.VAE`` holding the ``AutoencoderKL`` of ``ddconfig`` with weights ``state``, in float32."""
    config = {"params": {"ddconfig": dict(ddconfig), "embed_dim": embed_dim}}
    vae = comfy.sd.VAE(sd=state, config=config, dtype=torch.float32)
    # The host sets this from the weights when it detects the config itself (16 for Flux / SD3 VAEs);
    # with an explicit config it keeps its default of 4 (the SD value).
    vae.latent_channels = ddconfig["z_channels"]
    return vae


def clip_vision(config: dict) -> comfy.clip_vision.ClipVisionModel:
    """A host ``ClipVisionModel`` (what Load CLIP Vision and ImageOnlyCheckpointLoader give: CLIP_VISION) of a vision
    tower config in the host's json form (``comfy/clip_vision_config_h.json``'s keys), in the dtype and on the devices
    the host picks for it; its weights as the host creates them, for the caller to fill. The host reads the config
    from a file only, so it is written to a temporary one."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "clip_vision_config.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f)
        return comfy.clip_vision.ClipVisionModel(path)


def replace_qwen_vision_tower(clip: comfy.sd.CLIP, **sizes) -> None:
    """Swap the vision tower of a host Qwen2.5-VL text encoder (``llama.Qwen25_7BVLI`` builds it at its real size,
    1280 wide and 32 layers, uninitialised, whatever the config) for the host's class at ``sizes``
    (``Qwen2VLVisionTransformer``'s arguments), in float32 on the CPU, for the caller to fill."""
    from comfy.text_encoders.qwen_vl import Qwen2VLVisionTransformer

    encoder = clip.cond_stage_model.qwen25_7b
    encoder.transformer.visual = Qwen2VLVisionTransformer(dtype=torch.float32, device=torch.device("cpu"),
                                                          ops=encoder.operations, **sizes)


def wan_autoencoder(config: dict) -> torch.nn.Module:
    """The host's Wan 2.1 autoencoder module (``comfy.ldm.wan.vae.WanVAE``) of ``config``, uninitialised."""
    from comfy.ldm.wan.vae import WanVAE

    return WanVAE(**config)


def wan21_latent_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and spread of the host's Wan 2.1 latent format (``latent_formats.Wan21``: what the model
    sees is ``(z - mean) / spread``), each of 16 values."""
    from comfy.latent_formats import Wan21

    fmt = Wan21()
    return fmt.latents_mean.reshape(-1), fmt.latents_std.reshape(-1)


def wan22_autoencoder(config: dict) -> torch.nn.Module:
    """The host's Wan 2.2 autoencoder module (``comfy.ldm.wan.vae2_2.WanVAE``: 48 latent channels, a 2 x 2 patchify
    before its 8x: 16x in space, 4x in time) of ``config``, uninitialised."""
    from comfy.ldm.wan.vae2_2 import WanVAE

    return WanVAE(**config)


def wan22_latent_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and spread of the host's Wan 2.2 latent format (``latent_formats.Wan22``), 48 values each."""
    from comfy.latent_formats import Wan22

    fmt = Wan22()
    return fmt.latents_mean.reshape(-1), fmt.latents_std.reshape(-1)


def wan22_vae(module: torch.nn.Module) -> comfy.sd.VAE:
    """A host ``comfy.sd.VAE`` around a Wan 2.2 autoencoder ``module`` with the settings the host's loader gives the
    Wan 2.2 VAE it detects (``comfy.sd.VAE``: 48 channels, 16x in space, frames ``1 + (n - 1) / 4``), which builds
    the real width (160) from the weights' keys whatever their shapes."""
    vae = wan_vae(module)
    vae.upscale_ratio = (lambda a: max(0, a * 4 - 3), 16, 16)
    vae.upscale_index_formula = (4, 16, 16)
    vae.downscale_ratio = (lambda a: max(0, math.floor((a + 3) / 4)), 16, 16)
    vae.downscale_index_formula = (4, 16, 16)
    vae.latent_channels = 48
    size = comfy.model_management.dtype_size
    vae.memory_used_encode = lambda shape, dtype: 3300 * shape[3] * shape[4] * size(dtype)
    vae.memory_used_decode = lambda shape, dtype: 8000 * shape[3] * shape[4] * (16 * 16) * size(dtype)
    return vae


def pile_t5_spiece_model() -> torch.Tensor:
    """The host's bundled SentencePiece model of the Pile T5 (``comfy/text_encoders/t5_pile_tokenizer``, AuraFlow's:
    32000 English word pieces) as the byte tensor a Wan text encoder's file carries under ``spiece_model``
    (what ``UMT5XXlTokenizer`` reads; the real UMT5 one, 256384 pieces, is not bundled with the host)."""
    import os

    import comfy.text_encoders.aura_t5 as aura

    path = os.path.join(os.path.dirname(os.path.realpath(aura.__file__)), "t5_pile_tokenizer", "tokenizer.model")
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)


def wan_vae(module: torch.nn.Module) -> comfy.sd.VAE:
    """A host ``comfy.sd.VAE`` around a Wan 2.1 autoencoder ``module`` (``comfy.ldm.wan.vae.WanVAE``, 16 latent
    channels, 8x in space and 4x in time) with the settings the host's loader gives a Wan 2.1 VAE it detects
    (``comfy.sd.VAE``: a latent of 3 dimensions, frames ``1 + (n - 1) / 4``, its working dtypes and memory), which
    builds the real width (96) from the weights' keys whatever their shapes: Qwen-Image's VAE."""
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)}, dtype=torch.float32)
    vae.first_stage_model = module.eval()
    vae.upscale_ratio = (lambda a: max(0, a * 4 - 3), 8, 8)
    vae.upscale_index_formula = (4, 8, 8)
    vae.downscale_ratio = (lambda a: max(0, math.floor((a + 3) / 4)), 8, 8)
    vae.downscale_index_formula = (4, 8, 8)
    vae.latent_dim, vae.latent_channels = 3, 16
    vae.working_dtypes = [torch.bfloat16, torch.float16, torch.float32]
    size = comfy.model_management.dtype_size
    vae.memory_used_encode = lambda shape, dtype: 6000 * shape[3] * shape[4] * size(dtype)
    vae.memory_used_decode = lambda shape, dtype: 7000 * shape[3] * shape[4] * (8 * 8) * size(dtype)
    vae.patcher = comfy.model_patcher.ModelPatcher(module, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae


def module_vae(module: torch.nn.Module, downscale: int, latent_channels: int,
               encode_bytes: int, decode_bytes: int) -> comfy.sd.VAE:
    """A host ``comfy.sd.VAE`` whose first stage is ``module`` (``encode`` / ``decode`` of images in -1..1):
    the host's own encode/decode paths (process_input, batching, process_output) then run unchanged.
    ``encode_bytes`` / ``decode_bytes``: the working memory of each, per latent pixel and byte of dtype."""
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)}, dtype=torch.float32)
    vae.first_stage_model = module
    vae.downscale_ratio = vae.upscale_ratio = downscale
    vae.latent_channels = latent_channels
    size = comfy.model_management.dtype_size
    vae.memory_used_encode = lambda shape, dtype: encode_bytes * shape[2] * shape[3] * size(dtype)
    vae.memory_used_decode = lambda shape, dtype: decode_bytes * shape[2] * shape[3] * size(dtype)
    vae.patcher = comfy.model_patcher.ModelPatcher(module, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae
