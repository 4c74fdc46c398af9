"""Loading the built-in Toy World Models into the host's classes: MODEL, CLIP and VAE usable by
every stock node. Two worlds ship (weights committed under ``models/``):

- ``two objects`` (``models/toyworld2/``, issue 12): 512x512 scenes of two objects on a flat
  background, "a red circle and a blue square on a green background"; 64x64 latents like SD1.5.
- ``one object`` (``models/toyworld/``, issue 3): 128x128 images of one object, "a red circle
  on a green background"; 16x16 latents, about 16x cheaper per step.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import torch

from ..scenes_autoencoder import SceneAutoencoder
from ..toy_autoencoder import ToyAutoencoder
from ..toy_worlds import DEFAULT_WORLD, WORLD_1, WORLD_2, WORLDS  # noqa: F401 (the node's and callers' names)
from . import tiny_models


MODELS = Path(__file__).resolve().parents[2] / "models"


def world_dir(world: str) -> Path:
    if world not in WORLDS:
        raise ValueError(f"Toy World Model: unknown world {world!r}; use one of {', '.join(WORLDS)}")
    return MODELS / WORLDS[world].folder


def _load(name: str, world: str = DEFAULT_WORLD) -> dict:
    from safetensors.torch import load_file
    path = world_dir(world) / name
    if not path.is_file():
        raise FileNotFoundError(f"Toy World Model: {path} is missing; it ships with the pack "
                                f"(retrain with `{WORLDS[world].train_command}`).")
    return load_file(str(path))


def load_config(world: str = DEFAULT_WORLD) -> dict:
    return json.loads((world_dir(world) / "config.json").read_text())


def load_unet(config: dict, world: str = DEFAULT_WORLD) -> comfy.model_patcher.ModelPatcher:
    model_config = comfy.supported_models.SD15(copy.deepcopy(config["unet_config"]))
    model_config.unet_config.update(config["unet_overrides"])
    state = _load("toy_unet.safetensors", world)   # stored float16
    # The UNet dtype the host picks for a checkpoint with these weights (fp16 on a CUDA GPU; float32 on
    # the CPU unless the host is told otherwise); load_state_dict casts the stored weights to it.
    tiny_models.host_unet_dtype(model_config, state)
    model = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS,
                                       device=torch.device("cpu"))
    model.diffusion_model.load_state_dict(state, strict=True)
    return tiny_models.frozen_patcher(model)


def load_clip(config: dict, world: str = DEFAULT_WORLD) -> comfy.sd.CLIP:
    clip = tiny_models.build_tiny_clip(config["clip"]["family"], seed=config["clip"]["seed"])
    stored = _load("toy_clip.safetensors", world)
    ids, rows = stored.pop("token_ids"), stored.pop("token_rows")
    model = clip.cond_stage_model
    with torch.no_grad():
        missing, unexpected = model.load_state_dict(stored, strict=False)
        if unexpected or any(not k.endswith(("token_embedding.weight", "position_ids", "logit_scale")) for k in missing):
            raise RuntimeError(f"Toy World Model: text encoder keys do not match ({missing[:3]}, {unexpected[:3]})")
        table = next(m for n, m in model.named_modules() if n.endswith("token_embedding"))
        table.weight[ids] = rows.to(table.weight.dtype)
    return clip


def load_vae(config: dict, world: str = DEFAULT_WORLD) -> comfy.sd.VAE:
    if config["vae"]["class"].endswith("SceneAutoencoder"):
        ae = SceneAutoencoder(**config["vae"].get("kwargs", {}))
    else:
        ae = ToyAutoencoder()
    ae.load_state_dict(_load("toy_vae.safetensors", world), strict=True)
    ae.eval()
    ae.requires_grad_(False)
    # A host VAE whose first stage is the toy autoencoder: the host's own encode/decode paths
    # (process_input, batching, process_output) then run unchanged.
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)}, dtype=torch.float32)
    vae.first_stage_model = ae
    vae.downscale_ratio = vae.upscale_ratio = config["vae"]["downscale"]
    vae.latent_channels = ae.enc[-1].out_channels
    vae.memory_used_encode = lambda shape, dtype: 400 * shape[2] * shape[3] * comfy.model_management.dtype_size(dtype)
    vae.memory_used_decode = lambda shape, dtype: 400 * 64 * shape[2] * shape[3] * comfy.model_management.dtype_size(dtype)
    vae.patcher = comfy.model_patcher.ModelPatcher(ae, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae


def load_toy_model(world: str = DEFAULT_WORLD):
    """(MODEL, CLIP, VAE) of the built-in toy world model of ``world`` (a key of ``WORLDS``),
    fresh objects on every call."""
    config = load_config(world)
    return load_unet(config, world), load_clip(config, world), load_vae(config, world)
