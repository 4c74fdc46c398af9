"""The subjects the personalisation workflows teach the toy worlds (issue 28).

DreamBooth's: a hollow red square (a frame); the world draws only solid shapes, so the Toy World
Model never drew one. Textual Inversion's: a yellow triangle, which the model can draw (the method
keeps the model frozen: it can only name what the model can already draw), learned as a new word.

    python -m workshop.toyworld.subject     # writes the assets below

Each asset is an animated PNG of four photos: the stock Load Image loads its frames as one IMAGE
batch, which VAE Encode turns into the training images."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import torch

from . import scenes as S
from . import world as W

HOLE = 0.55   # the hole's half-side, as a fraction of the square's
ASSETS = Path(__file__).resolve().parents[2] / "assets"
ASSET = ASSETS / "subject_hollow_square.png"
WORD_ASSET = ASSETS / "subject_yellow_triangle.png"
ORANGE_ASSET = ASSETS / "subject_orange_square.png"          # world 2's DreamBooth subject (orange_photos)
CUSTOM_EDIT_ASSET = ASSETS / "custom_edit_two_objects.png"   # world 2's Custom-Edit photo (CUSTOM_EDIT_SCENE)
# The photo world 2's Custom-Edit workflow puts the orange square into: a red square (the subject's class) and
# another object to keep, on white (the subject's photos' background), laid out as world 2's sample image.
CUSTOM_EDIT_SCENE = S.Scene("white", (S.Obj("red", "square", 150.0, 170.0, 90.0), S.Obj("blue", "circle", 370.0, 340.0, 96.0)))


def subject_photos(count: int = 4, seed: int = 28, background: str = "white", world: int = 1) -> torch.Tensor:
    """``count`` renders ``[B, H, W, 3]`` of the subject alone on ``background``, at random places and
    sizes (the benchmark's on white; the workflow's on blue, the sample image's background, where its
    Custom-Edit puts the subject). ``world`` 1: 128 px, the one-object world's scenes; 2: 512 px,
    world 2's one-object scenes (its captions "a red square on a white background")."""
    rng = random.Random(seed)
    images = []
    for _ in range(count):
        if world == 2:
            scene = S.random_scene(rng, 1, background, ["red"], ["square"])
            image, _ = S.render(scene)
            square = scene.objects[0]
            hole = S.object_coverage(replace(square, size=HOLE * square.size))[..., None]
        else:
            scene = W.random_scene(rng, colour="red", shape="square", background=background)
            image, _ = W.render(scene)
            hole = W.coverage("square", scene.cx, scene.cy, HOLE * scene.size)[..., None]
        images.append(image * (1 - hole) + W.rgb(background) * hole)
    return torch.stack(images)


ORANGE = (1.0, 0.5, 0.0)   # world 2's DreamBooth subject: a colour outside the world (the VAE gives it back)


def orange_photos(count: int = 4, seed: int = 28, background: str = "white") -> torch.Tensor:
    """``count`` renders ``[B, H, W, 3]`` of world 2's other DreamBooth subject: an orange square (a colour
    the world never draws, where a frame is beyond its model's drawing: docs/measurements.md, "Why world
    2's model does not learn the subject"), alone on ``background`` at world 2's random places and sizes."""
    rng = random.Random(seed)
    images = []
    for _ in range(count):
        scene = S.random_scene(rng, 1, background, ["red"], ["square"])
        cover = S.object_coverage(scene.objects[0])[..., None]
        images.append(W.rgb(background) * (1 - cover) + torch.tensor(ORANGE) * cover)
    return torch.stack(images)


def word_photos(count: int = 4, seed: int = 5) -> torch.Tensor:
    """``count`` renders of Textual Inversion's subject, a yellow triangle on white."""
    rng = random.Random(seed)
    return W.render_batch([W.random_scene(rng, colour="yellow", shape="triangle", background="white")
                           for _ in range(count)])


def write_asset(path: Path, photos: torch.Tensor) -> Path:
    import numpy as np
    from PIL import Image

    frames = [Image.fromarray((im.numpy() * 255).round().astype(np.uint8)) for im in photos]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=500, loop=0)
    return path


if __name__ == "__main__":
    print(write_asset(ASSET, subject_photos(background="blue")))
    print(write_asset(WORD_ASSET, word_photos()))
    print(write_asset(ORANGE_ASSET, orange_photos()))
    print(write_asset(CUSTOM_EDIT_ASSET, S.render(CUSTOM_EDIT_SCENE)[0][None]))
