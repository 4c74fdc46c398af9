"""Loading the built-in Toy World Models into the host's classes: MODEL, CLIP and VAE usable by
every stock node. Two worlds ship (weights committed under ``models/``):

- ``two objects`` (``models/toyworld2/``, issue 12): 512x512 scenes of two objects on a flat
  background, "a red circle and a blue square on a green background"; 64x64 latents like SD1.5.
- ``one object`` (``models/toyworld/``, issue 3): 128x128 images of one object, "a red circle
  on a green background"; 16x16 latents, about 16x cheaper per step.
- ``two objects, flow DiT`` (``models/toyworld-flow/``, issue 26): world 2's scenes at 256 px drawn
  by a small Flux-architecture DiT (the host's ``FluxSchnell`` class: no guidance embedding; sampled
  with CFG), 16-channel latents in Flux's latent format, the seeded random tiny Flux text encoders.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..hostkit import loaders
from . import tiny_models
from .scenes_autoencoder import SceneAutoencoder
from .toy_autoencoder import ToyAutoencoder
from .worlds import DEFAULT_WORLD, WORLD_1, WORLD_2, WORLD_FLOW, WORLDS  # noqa: F401 (the node's and callers' names)


MODELS = Path(__file__).resolve().parents[2] / "models"
#: a world's weights read from another folder than ``models/<its folder>`` (the workshop's benchmarks of a
#: candidate model: ``toyworld_flow --model-dir``); empty in the pack's own use
FOLDERS: dict[str, Path] = {}


def world_dir(world: str) -> Path:
    if world not in WORLDS:
        raise ValueError(f"Toy World Model: unknown world {world!r}; use one of {', '.join(WORLDS)}")
    return FOLDERS.get(world, MODELS / WORLDS[world].folder)


def _load(name: str, world: str = DEFAULT_WORLD) -> dict:
    from safetensors.torch import load_file
    path = world_dir(world) / name
    if not path.is_file():
        raise FileNotFoundError(f"Toy World Model: {path} is missing; it ships with the pack "
                                f"(retrain with `{WORLDS[world].train_command}`).")
    return load_file(str(path))


def load_config(world: str = DEFAULT_WORLD) -> dict:
    return json.loads((world_dir(world) / "config.json").read_text())


def load_unet(config: dict, world: str = DEFAULT_WORLD):
    """The world's UNet (an SD1-style eps model) as a host ModelPatcher. The weights are stored in
    float16; they load in the UNet dtype the host picks for a checkpoint with these weights (fp16 on a
    CUDA GPU; float32 on the CPU unless the host is told otherwise)."""
    sd1 = loaders.HOST_CLASSES["sd1"]
    return loaders.load_unet(sd1.config_class, config["unet_config"], config["unet_overrides"], sd1.model_type,
                             _load("toy_unet.safetensors", world))


def load_clip(config: dict, world: str = DEFAULT_WORLD):
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


def load_flow_dit(config: dict, world: str = WORLD_FLOW):
    """The flow world's DiT (the host's Flux class through the family's config class) as a host
    ModelPatcher, in the dtype the host picks for a checkpoint of these weights (stored float16)."""
    host = loaders.HOST_CLASSES[config["family"]]
    return loaders.load_unet(host.config_class, config["dit_config"], {}, host.model_type,
                             _load("toy_dit.safetensors", world))


def load_flow_clip(config: dict):
    """The flow world's text encoders: the seeded random tiny Flux pair, frozen (nothing stored),
    its T5 bound where the config says (``t5_binding``: each noun carries its colour word)."""
    from .t5_binding import bind_words
    from .tiny_flow_models import build_tiny_flow_clip
    text = config["clip"]
    clip = build_tiny_flow_clip(text["family"], seed=text["seed"], tokenizer_data=text["tokenizer_data"])
    if text.get("bind"):
        bind_words(clip, text["bind"])
    return clip


def load_vae(config: dict, world: str = DEFAULT_WORLD):
    if config["vae"]["class"].endswith("SceneAutoencoder"):
        ae = SceneAutoencoder(**config["vae"].get("kwargs", {}))
    else:
        ae = ToyAutoencoder()
    ae.load_state_dict(_load("toy_vae.safetensors", world), strict=True)
    ae.eval()
    ae.requires_grad_(False)
    return loaders.module_vae(ae, downscale=config["vae"]["downscale"], latent_channels=ae.enc[-1].out_channels,
                              encode_bytes=400, decode_bytes=400 * 64)


def load_toy_model(world: str = DEFAULT_WORLD):
    """(MODEL, CLIP, VAE) of the built-in toy world model of ``world`` (a key of ``WORLDS``),
    fresh objects on every call."""
    config = load_config(world)
    if WORLDS[world].family != "sd1":
        return load_flow_dit(config, world), load_flow_clip(config), load_vae(config, world)
    return load_unet(config, world), load_clip(config, world), load_vae(config, world)
