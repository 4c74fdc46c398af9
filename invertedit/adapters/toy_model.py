"""Loading the built-in Toy World Model (weights committed under models/toyworld/) into the
host's classes: MODEL, CLIP and VAE usable by every stock node."""
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

from ..toy_autoencoder import ToyAutoencoder
from . import tiny_models


MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "toyworld"


def _load(name: str) -> dict:
    from safetensors.torch import load_file
    path = MODEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"Toy World Model: {path} is missing; it ships with the pack "
                                f"(retrain with `python -m workshop.toyworld.train`).")
    return load_file(str(path))


def load_config() -> dict:
    return json.loads((MODEL_DIR / "config.json").read_text())


def load_unet(config: dict) -> comfy.model_patcher.ModelPatcher:
    model_config = comfy.supported_models.SD15(copy.deepcopy(config["unet_config"]))
    model_config.unet_config.update(config["unet_overrides"])
    model_config.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS,
                                       device=torch.device("cpu"))
    state = {k: v.float() if v.is_floating_point() else v for k, v in _load("toy_unet.safetensors").items()}
    model.diffusion_model.load_state_dict(state, strict=True)
    model.eval()
    model.requires_grad_(False)
    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )


def load_clip(config: dict) -> comfy.sd.CLIP:
    clip = tiny_models.build_tiny_clip(config["clip"]["family"], seed=config["clip"]["seed"])
    stored = _load("toy_clip.safetensors")
    ids, rows = stored.pop("token_ids"), stored.pop("token_rows")
    model = clip.cond_stage_model
    with torch.no_grad():
        missing, unexpected = model.load_state_dict(stored, strict=False)
        if unexpected or any(not k.endswith(("token_embedding.weight", "position_ids", "logit_scale")) for k in missing):
            raise RuntimeError(f"Toy World Model: text encoder keys do not match ({missing[:3]}, {unexpected[:3]})")
        table = next(m for n, m in model.named_modules() if n.endswith("token_embedding"))
        table.weight[ids] = rows.to(table.weight.dtype)
    return clip


def load_vae() -> comfy.sd.VAE:
    ae = ToyAutoencoder()
    ae.load_state_dict(_load("toy_vae.safetensors"), strict=True)
    ae.eval()
    ae.requires_grad_(False)
    # A host VAE whose first stage is the toy autoencoder: the host's own encode/decode paths
    # (process_input, batching, process_output) then run unchanged.
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)}, dtype=torch.float32)
    vae.first_stage_model = ae
    vae.downscale_ratio = 8
    vae.upscale_ratio = 8
    vae.latent_channels = ae.enc[-1].out_channels
    vae.memory_used_encode = lambda shape, dtype: 400 * shape[2] * shape[3] * comfy.model_management.dtype_size(dtype)
    vae.memory_used_decode = lambda shape, dtype: 400 * 64 * shape[2] * shape[3] * comfy.model_management.dtype_size(dtype)
    vae.patcher = comfy.model_patcher.ModelPatcher(ae, load_device=vae.device,
                                                   offload_device=comfy.model_management.vae_offload_device())
    return vae


def load_toy_model():
    """(MODEL, CLIP, VAE) of the built-in toy world model, fresh objects on every call."""
    config = load_config()
    return load_unet(config), load_clip(config), load_vae()
