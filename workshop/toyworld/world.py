"""The toy world: a flat background colour and one object (shape, colour, centre, size).

Images are float tensors ``[H, W, 3]`` in 0..1 (ComfyUI's IMAGE layout without the batch).
Every object is defined by its bounding box: centre ``(cx, cy)`` and half-extent ``size``
in pixels, so a shape edit keeps the bounding box (the ground-truth target of a shape edit is
the same box with another shape). Edges are anti-aliased by 4x4 supersampling; the exact
mask is the coverage > 0.5.

Caption template: ``"a {colour} {shape} on a {background} background"``; every word is a single
token of the CLIP tokenizer, so any edit of one word keeps the token count.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import torch

from invertedit.demo.worlds import COLOURS, PALETTE  # noqa: F401 (the worlds' colours, handed on)

SIZE = 128  # image side in pixels

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

SIZE_RANGE = (18.0, 34.0)  # half-extent in pixels
MARGIN = 4.0  # the whole object stays this far inside the image

TEMPLATE = "a {colour} {shape} on a {background} background"


@dataclass(frozen=True)
class Scene:
    background: str
    colour: str
    shape: str
    cx: float
    cy: float
    size: float

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape, self.background)


def caption(colour: str, shape: str, background: str) -> str:
    return TEMPLATE.format(colour=colour, shape=shape, background=background)


def parse_caption(text: str) -> tuple[str, str, str]:
    """(colour, shape, background) of a template caption."""
    words = text.split()
    if len(words) != 7 or words[0] != "a" or words[3:5] != ["on", "a"] or words[6] != "background":
        raise ValueError(f"not a toy-world caption: {text!r}")
    return words[1], words[2], words[5]


def all_captions() -> list[str]:
    """Every caption of the world (object colour != background colour)."""
    return [caption(c, s, b) for b in COLOURS for c in COLOURS if c != b for s in SHAPES]


def random_scene(rng: random.Random, colour: str | None = None, shape: str | None = None,
                 background: str | None = None) -> Scene:
    bg = background or rng.choice(COLOURS)
    col = colour or rng.choice([c for c in COLOURS if c != bg])
    shp = shape or rng.choice(SHAPES)
    size = rng.uniform(*SIZE_RANGE)
    lo, hi = size + MARGIN, SIZE - size - MARGIN
    return Scene(bg, col, shp, rng.uniform(lo, hi), rng.uniform(lo, hi), size)


def coverage(shape: str, cx: float, cy: float, size: float, res: int = SIZE, ss: int = 4,
             height: float | None = None) -> torch.Tensor:
    """Fraction of each pixel covered by the shape, ``[res, res]`` in 0..1 (``ss``x``ss`` supersampling);
    ``height``: another half-height than ``size`` (the half-width), the shape stretched to that box."""
    n = res * ss
    coords = (torch.arange(n, dtype=torch.float32) + 0.5) / ss  # pixel units; pixel i spans [i, i+1)
    y = coords.view(n, 1).expand(n, n)
    x = coords.view(1, n).expand(n, n)
    dx, dy = x - cx, y - cy
    if height is not None:
        dy = dy * (size / height)
    if shape == "circle":
        inside = dx * dx + dy * dy <= size * size
    elif shape == "square":
        inside = (dx.abs() <= size) & (dy.abs() <= size)
    elif shape == "triangle":
        # apex at the top centre of the box, base along its bottom edge
        t = (dy + size) / (2 * size)  # 0 at the top, 1 at the bottom
        inside = (t >= 0) & (t <= 1) & (dx.abs() <= t * size)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return inside.float().view(res, ss, res, ss).mean(dim=(1, 3))


def rgb(name: str) -> torch.Tensor:
    return torch.tensor(PALETTE[name], dtype=torch.float32)


def render(scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
    """(image ``[H, W, 3]`` in 0..1, exact boolean mask ``[H, W]``) of a scene."""
    cov = coverage(scene.shape, scene.cx, scene.cy, scene.size)
    img = rgb(scene.background) * (1 - cov[..., None]) + rgb(scene.colour) * cov[..., None]
    return img, cov > 0.5


def render_batch(scenes: list[Scene]) -> torch.Tensor:
    """``[B, H, W, 3]`` images (ComfyUI IMAGE layout)."""
    return torch.stack([render(s)[0] for s in scenes])


# ---------------------------------------------------------------------------------------------
# Edit cases
# ---------------------------------------------------------------------------------------------

EDIT_KINDS: tuple[str, ...] = ("colour", "shape", "background")


@dataclass(frozen=True)
class EditCase:
    kind: str  # "colour", "shape" or "background"
    source: Scene
    target: Scene

    @property
    def source_caption(self) -> str:
        return self.source.caption

    @property
    def target_caption(self) -> str:
        return self.target.caption


def edit_target(source: Scene, kind: str, rng: random.Random) -> Scene:
    if kind == "colour":
        return replace(source, colour=rng.choice([c for c in COLOURS if c not in (source.colour, source.background)]))
    if kind == "shape":
        return replace(source, shape=rng.choice([s for s in SHAPES if s != source.shape]))
    if kind == "background":
        return replace(source, background=rng.choice([c for c in COLOURS if c not in (source.colour, source.background)]))
    raise ValueError(f"unknown edit kind {kind!r}; expected one of {EDIT_KINDS}")


def edit_cases(n: int = 60, seed: int = 0) -> list[EditCase]:
    """``n`` edit cases, kinds in turn (colour, shape, background), from a fixed seed."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind = EDIT_KINDS[i % len(EDIT_KINDS)]
        src = random_scene(rng)
        cases.append(EditCase(kind, src, edit_target(src, kind, rng)))
    return cases


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of images in 0..1 (over ``mask`` pixels only when given; inf if identical)."""
    d = (a.float() - b.float()) ** 2
    if mask is not None:
        d = d[mask.bool()]
    mse = float(d.mean()) if d.numel() else 0.0
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
