"""Toy World Model node: the pack's built-in demo/test text-to-image model (issue 3).

A tiny SD1.x-architecture model trained on the toy world (``toyworld/``): 128x128 images of a
flat background and one object, captioned "a red circle on a blue background". It is what the
pack's workflows, tests and benchmark run on, because every edit in that world has a known
exact answer. It only knows that world's words (colours: red, green, blue, yellow, white,
black; shapes: circle, square, triangle) and makes 128x128 images.

Built from the host's own classes, so every stock node takes its outputs:
- MODEL: ``comfy.supported_models.SD15`` with the small ``unet_config`` of
  ``models/toyworld/config.json`` (eps prediction, SD1.x schedule, SD15 latent format), in a
  ``ModelPatcher``; weights from ``toy_unet.safetensors`` (stored float16, run float32).
- CLIP: the pack's seeded random SD1 text encoder (``tiny_models.build_tiny_clip``; the real
  CLIP tokenizer) with the trained-against weights of ``toy_clip.safetensors`` loaded over it.
- VAE: ``toyworld.ae.ToyAutoencoder`` (normalisation-free, 8x, 4 channels, latents scaled like
  SD1.x) mounted in a ``comfy.sd.VAE``, so VAE Encode / VAE Decode work unchanged.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from comfy_api.latest import io

import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models

from ..toy_autoencoder import ToyAutoencoder
from ..adapters import tiny_models

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "toyworld"

_DESCRIPTION = (
    "The pack's BUILT-IN DEMO / TEST model: a tiny text-to-image model (about 4 M parameters) "
    "trained on the pack's toy world, 128x128 images of one coloured shape on a flat background. "
    "Prompts look like 'a red circle on a blue background' (colours: red, green, blue, yellow, "
    "white, black; shapes: circle, square, triangle); use 128x128 latents. Because the true "
    "answer of every edit in that world is known, the pack's workflows, tests and benchmark use "
    "it. It is not a general image model: use a real checkpoint loader for real photographs."
)


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


class ToyModel(io.ComfyNode):
    NAME = "Toy World Model (built-in demo)"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditToyModel",
            display_name=cls.NAME,
            category="InvertEdit/testing",
            description=_DESCRIPTION,
            inputs=[],
            outputs=[
                io.Model.Output(tooltip="Built-in demo diffusion model (SD1.x architecture, tiny, trained on the toy world only). "
                                        "Use 128x128 images / 16x16 latents."),
                io.Clip.Output(tooltip="Its frozen text encoder (real CLIP tokenizer). Prompts: 'a <colour> <shape> on a <colour> background'."),
                io.Vae.Output(tooltip="Its small VAE: 8x downscale, 4 latent channels, latents scaled like SD1.x."),
            ],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        # Fresh objects per run (loading takes well under a second): nothing shared between runs.
        return io.NodeOutput(*load_toy_model())


NODES = [ToyModel]
