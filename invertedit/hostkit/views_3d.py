"""The host's Hunyuan3D-2 end of a view set (issue 83): its model classes for the pack's built-in tiny model, and the
verbs the "Views to Hunyuan3D" node runs on a user's views through the host's own nodes.

- ``HUNYUAN3D_CLASSES``: the host's config class and model type of Hunyuan3D-2 (``supported_models.Hunyuan3Dv2``:
  ``model_base.Hunyuan3Dv2`` on ``ldm/hunyuan3d/model.py``'s DiT, rectified flow, shift 1), for
  ``loaders.empty_unet`` / ``load_unet``.
- ``shape_autoencoder`` / ``shape_vae``: the host's ShapeVAE module (``ldm/hunyuan3d/vae.py``) of a config, and a host
  ``comfy.sd.VAE`` around it with the settings the host's VAE loader gives the Hunyuan3D-2 VAE it detects (a latent of
  one dimension, its working dtypes and memory estimates), so that the stock VAEDecodeHunyuan3D decodes it unchanged.
- ``is_dinov2``: whether a CLIP_VISION is the DINOv2 kind Hunyuan3D-2 conditions on.
- ``encode_views``: the stock CLIPVisionEncode of each view (one image at a time, as the host's template wires it);
  ``multiview_conditioning``: the stock Hunyuan3Dv2ConditioningMultiView of the front / left / back / right outputs
  (its view embedding and concatenation; the negative is its zeros).
"""
from __future__ import annotations

import torch

import comfy.image_encoders.dino2
import comfy.ldm.hunyuan3d.vae
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy_extras.nodes_hunyuan3d
import nodes

from .loaders import HostClasses
from .schemas import io

#: a view set's record (``techniques/views_to_3d/layout.py``'s ViewSet): View Set's output, the 3D nodes' input
Views = io.Custom("VIEWS")

#: Hunyuan3D-2 (2.0 and 2mv): its DiT predicts a flow velocity (the host's FLOW, shift 1, timestep = sigma); it has
#: no text encoder (``clip_target`` None): its conditioning is the CLIP vision (DINOv2) output of the view(s)
HUNYUAN3D_CLASSES = HostClasses(comfy.supported_models.Hunyuan3Dv2, comfy.model_base.ModelType.FLOW, ())

#: the four names Hunyuan3Dv2ConditioningMultiView takes, in its order (its view embedding's index)
HUNYUAN3D_VIEWS: tuple[str, ...] = ("front", "left", "back", "right")


def shape_autoencoder(config: dict) -> torch.nn.Module:
    """The host's Hunyuan3D-2 ShapeVAE (``comfy.ldm.hunyuan3d.vae.ShapeVAE``) of ``config``, uninitialised."""
    return comfy.ldm.hunyuan3d.vae.ShapeVAE(**config)


def shape_vae(module: torch.nn.Module) -> comfy.sd.VAE:
    """A host ``comfy.sd.VAE`` around a ShapeVAE ``module`` with the settings the host's loader gives the Hunyuan3D-2
    VAE it detects by its keys (``comfy.sd.VAE``: ``latent_dim`` 1, working dtypes fp16 / bf16 / fp32, memory of the
    decoder's layers), which builds the real width (1024, 16 layers) whatever the weights' shapes; in float32."""
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)}, dtype=torch.float32)
    vae.first_stage_model = module.eval().to(torch.float32)
    vae.latent_dim = 1
    vae.latent_channels = 64
    vae.working_dtypes = [torch.float16, torch.bfloat16, torch.float32]
    size = comfy.model_management.dtype_size
    vae.memory_used_encode = lambda shape, dtype: shape[0] * shape[1] * shape[2] * size(dtype) * 1
    vae.memory_used_decode = lambda shape, dtype: shape[0] * shape[1] * shape[2] * size(dtype) * (1 + 2 * 16)
    vae.patcher = comfy.model_patcher.ModelPatcher(module, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae


def is_dinov2(clip_vision) -> bool:
    """Whether a CLIP_VISION is a DINOv2 image encoder (``comfy.image_encoders.dino2``), the kind Hunyuan3D-2 conditions
    on (its checkpoint's ``conditioner.main_image_encoder``: DINOv2 giant), not a CLIP ViT (SV3D's, a CLIP vision
    file's), whose tokens the DiT's context layer cannot read."""
    return isinstance(getattr(clip_vision, "model", None), comfy.image_encoders.dino2.Dinov2Model)


def encode_views(clip_vision, images: torch.Tensor, rows: list[int], crop: str) -> list:
    """The stock CLIPVisionEncode (``crop`` "none": the view stretched to the encoder's square, as the host's
    Hunyuan3D-2mv template sets it; "center") of the images ``rows`` of the batch ``images``, one CLIP_VISION_OUTPUT
    each, as the template encodes each view with its own node."""
    encoder = nodes.CLIPVisionEncode()
    return [encoder.encode(clip_vision, images[i:i + 1], crop)[0] for i in rows]


def multiview_conditioning(outputs: dict) -> tuple:
    """The stock Hunyuan3Dv2ConditioningMultiView of ``outputs`` (name in ``HUNYUAN3D_VIEWS`` -> CLIP_VISION_OUTPUT):
    (positive, negative) CONDITIONING."""
    return comfy_extras.nodes_hunyuan3d.Hunyuan3Dv2ConditioningMultiView().encode(**outputs)
