"""The Toy World Model's worlds, in one table: the node's dropdown, the folder of its weights
under ``models/``, the command that trains it, the image size it was trained at and the sample
image bundled in ``assets/``. Plain data (no torch, no host), so that the headless runner and the
workflow writer read it before any host is booted."""
from __future__ import annotations

from typing import NamedTuple


class World(NamedTuple):
    folder: str          # under models/
    train_command: str   # reproduces the weights
    size: int            # the image side it was trained at (px)
    sample: str          # its sample scene, a file in assets/
    family: str = "sd1"  # the host family it is built as (hostkit.loaders.HOST_CLASSES)


# The toy worlds' colours: name -> RGB in 0..1. All single CLIP tokens; far apart in RGB.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.20),
    "blue": (0.10, 0.20, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "white": (0.95, 0.95, 0.95),
    "black": (0.05, 0.05, 0.05),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)

WORLD_2 = "two objects (512 px)"
WORLD_1 = "one object (128 px)"
WORLD_FLOW = "two objects, flow DiT (256 px)"
WORLDS: dict[str, World] = {   # the default first: the node's dropdown lists them in this order
    WORLD_2: World("toyworld2", "python -m workshop.toyworld.train_scenes", 512, "sample_two_objects.png"),
    WORLD_1: World("toyworld", "python -m workshop.toyworld.train", 128, "sample.png"),
    WORLD_FLOW: World("toyworld-flow", "python -m workshop.toyworld.train_flow", 256, "sample_flow.png",
                      "flux-dev"),
}

# The flow world's text encoders: the pack's seeded random tiny Flux pair (T5 context, CLIP-L pooled;
# ``tiny_flow_models.build_tiny_flow_clip``), frozen, with T5 padded to 16 tokens (the world's
# longest caption) instead of Flux's 256, through the host tokenizer's own option; its T5 bound so
# that each noun carries the colour word before it (``t5_binding``; the world's words named here):
# what train_flow trains on and the shipped model's config.json names (the Toy World Model node builds
# the encoder its config names; the models before it had no ``bind``).
FLOW_TEXT = {"family": "flux-schnell", "seed": 5, "tokenizer_data": {"t5xxl_min_length": 16},
             "bind": {"colours": ["red", "green", "blue", "yellow", "white", "black"],
                      "others": ["a", "and", "on", "background", "circle", "square", "triangle"], "gain": 8.0}}
DEFAULT_WORLD = WORLD_2   # the workflows' world: each word finds its object (docs/toyworld.md)
