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


WORLD_2 = "two objects (512 px)"
WORLD_1 = "one object (128 px)"
WORLDS: dict[str, World] = {   # the default first: the node's dropdown lists them in this order
    WORLD_2: World("toyworld2", "python -m workshop.toyworld.train_scenes", 512, "sample_two_objects.png"),
    WORLD_1: World("toyworld", "python -m workshop.toyworld.train", 128, "sample.png"),
}
DEFAULT_WORLD = WORLD_2   # the workflows' world: each word finds its object (docs/toyworld.md)
