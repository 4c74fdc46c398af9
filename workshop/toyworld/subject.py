"""The subject DreamBooth teaches the one-object toy world (issue 28): a hollow red square (a
frame). The world draws only solid shapes, so the Toy World Model never drew one.

    python -m workshop.toyworld.subject     # writes assets/subject_hollow_square.png

The asset is an animated PNG of the four photos: the stock Load Image loads its frames as one
IMAGE batch, which VAE Encode turns into DreamBooth LoRA's instance images."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from . import world as W

HOLE = 0.55   # the hole's half-side, as a fraction of the square's
ASSET = Path(__file__).resolve().parents[2] / "assets" / "subject_hollow_square.png"


def subject_photos(count: int = 4, seed: int = 28) -> torch.Tensor:
    """``count`` renders ``[B, H, W, 3]`` of the subject on white, at random places and sizes."""
    rng = random.Random(seed)
    images = []
    for _ in range(count):
        scene = W.random_scene(rng, colour="red", shape="square", background="white")
        image, _ = W.render(scene)
        hole = W.coverage("square", scene.cx, scene.cy, HOLE * scene.size)[..., None]
        images.append(image * (1 - hole) + W.rgb("white") * hole)
    return torch.stack(images)


def write_asset(path: Path = ASSET) -> Path:
    import numpy as np
    from PIL import Image

    frames = [Image.fromarray((im.numpy() * 255).round().astype(np.uint8)) for im in subject_photos()]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=500, loop=0)
    return path


if __name__ == "__main__":
    print(write_asset())
