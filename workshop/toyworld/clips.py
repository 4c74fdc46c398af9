"""Toy clips (issue 82): world 2's scenes with the two objects moving along straight paths.

A clip is ``frames`` scenes of toy world 2 (``toyworld.scenes``): the same background and the
same two objects (colour, shape, size), each object's centre moving by a constant velocity
``(vx, vy)`` canonical pixels per frame, a few pixels a frame, so that every frame is a scene of
the world: every box inside the image (``scenes.inside``) and the two boxes apart
(``scenes.boxes_apart``) in every frame. Rendered exactly by ``scenes.render`` frame by frame; the
clip as the host sees it is an IMAGE batch ``[F, H, W, 3]`` (issue 82's convention: a clip is an
IMAGE batch of F >= 2 frames).

Edits of a clip are the still benchmark's (``scenes.edit_cases``: an object's colour, its shape,
the background, dropping an object) applied to every frame: the exact answer of frame f is frame f
with that edit (the edited object keeps its path; a dropped one is gone from every frame).

``SAMPLE_CLIP``: the pack's sample scene (``scenes.SAMPLE``, "a red circle and a blue square on a
green background", the Toy World Model's default world) with the circle moving down-left and the
square up-right, 5 px a frame (3 across, 4 down/up), 8 frames: the bundled
``assets/toy_clip_two_objects.png``, an 8-frame lossless animated PNG that the stock Load Image
node loads as an IMAGE batch of 8 (it stacks every frame of a multi-frame file).

    python -m workshop.toyworld.clips [--out assets/]     (writes the asset)
"""
from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import scenes as S

FRAMES = 8                 # the benchmark's clip length (16 as an option)
SPEED_RANGE = (2.0, 6.0)   # canonical pixels per frame of each object's path
CLIP_ASSET = "toy_clip_two_objects.png"
FRAME_MS = 125             # the asset's frame duration (8 frames a second)


@dataclass(frozen=True)
class Clip:
    """A moving scene: ``start`` (frame 0) and each object's velocity (canonical px per frame)."""
    start: S.Scene
    velocity: tuple[tuple[float, float], ...]   # one (vx, vy) per object of ``start``
    frames: int = FRAMES

    def scene(self, f: int) -> S.Scene:
        """Frame ``f``'s scene."""
        objs = tuple(replace(o, cx=o.cx + f * vx, cy=o.cy + f * vy) for o, (vx, vy) in zip(self.start.objects,
                                                                                             self.velocity))
        return S.Scene(self.start.background, objs)

    def scenes(self) -> list[S.Scene]:
        return [self.scene(f) for f in range(self.frames)]

    @property
    def caption(self) -> str:
        return self.start.caption


def valid(clip) -> bool:
    """Every frame a scene of the world: boxes inside the image and apart (``clip``: anything with ``scenes()``, a
    ``Clip`` or a view set)."""
    for sc in clip.scenes():
        objs = sc.objects
        if not all(S.inside(o) for o in objs):
            return False
        if not all(S.boxes_apart(a, b) for i, a in enumerate(objs) for b in objs[i + 1:]):
            return False
    return True


def moving(rng: random.Random, start: S.Scene, frames: int = FRAMES, speed: tuple[float, float] = SPEED_RANGE,
           tries: int = 2000) -> Clip | None:
    """A clip from ``start`` with each object moving at a random speed in ``speed`` (px per frame)
    in a random direction, redrawn until every frame is valid; None if ``tries`` draws all fail."""
    for _ in range(tries):
        vel = []
        for _o in start.objects:
            s, a = rng.uniform(*speed), rng.uniform(0.0, 2 * math.pi)
            vel.append((s * math.cos(a), s * math.sin(a)))
        clip = Clip(start, tuple(vel), frames)
        if valid(clip):
            return clip
    return None


def random_clip(rng: random.Random, content: S.Scene, frames: int = FRAMES,
                speed: tuple[float, float] = SPEED_RANGE) -> Clip:
    """A valid moving clip of ``content``'s objects (colours, shapes, sizes, background): from its
    own positions when some path fits, else from redrawn positions (same content and sizes)."""
    clip = moving(rng, content, frames, speed, tries=200)
    while clip is None:
        objs = []
        for o in content.objects:
            lo, hi = o.size + S.MARGIN, S.SIZE - o.size - S.MARGIN
            objs.append(replace(o, cx=rng.uniform(lo, hi), cy=rng.uniform(lo, hi)))
        if all(S.boxes_apart(a, b) for i, a in enumerate(objs) for b in objs[i + 1:]):
            clip = moving(rng, S.Scene(content.background, tuple(objs)), frames, speed, tries=50)
    return clip


@dataclass(frozen=True)
class ClipEditCase:
    """A still edit case (``scenes.EditCase``) applied to every frame of a moving clip."""
    case: S.EditCase    # the still case of frame 0 (kind, index, source and target of frame 0)
    clip: Clip          # the source clip

    @property
    def kind(self) -> str:
        return self.case.kind

    @property
    def index(self) -> int | None:
        return self.case.index

    @property
    def frames(self) -> int:
        return self.clip.frames

    @property
    def source_caption(self) -> str:
        return self.case.source_caption

    @property
    def target_caption(self) -> str:
        return self.case.target_caption

    def frame_case(self, f: int) -> S.EditCase:
        """Frame ``f``'s still edit case: its source scene and the same edit applied to it."""
        src = self.clip.scene(f)
        return S.EditCase(self.kind, src, edit_scene(self.case, src), self.index)

    def frame_cases(self) -> list[S.EditCase]:
        return [self.frame_case(f) for f in range(self.frames)]


def edit_scene(case: S.EditCase, scene: S.Scene) -> S.Scene:
    """``case``'s edit applied to ``scene`` (a frame of ``case.source``'s clip: same objects, other
    positions): the target's background, colours and shapes at the frame's positions."""
    if case.kind == "drop":
        scene = scene.without(case.index)
    return S.Scene(case.target.background, tuple(replace(t, cx=o.cx, cy=o.cy)
                                                 for t, o in zip(case.target.objects, scene.objects)))


def clip_edit_cases(n: int = 12, seed: int = 0, frames: int = FRAMES,
                    kinds: tuple[str, ...] = S.EDIT_KINDS) -> list[ClipEditCase]:
    """``n`` clip edit cases: the still benchmark's ``scenes.edit_cases(n, seed)`` (same contents
    and edits, kinds in turn), each scene set moving (paths from their own seed stream)."""
    rng = random.Random(10_000 + seed)
    out = []
    for case in S.edit_cases(n, seed=seed, kinds=kinds):
        clip = random_clip(rng, case.source, frames)
        frame0 = S.EditCase(case.kind, clip.start, edit_scene(case, clip.start), case.index)
        out.append(ClipEditCase(frame0, clip))
    return out


def render_clip(scenes: list[S.Scene], res: int = S.SIZE) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(IMAGE batch ``[F, res, res, 3]``, each frame's exact masks ``[n_objects, res, res]``) by ``scenes.render``."""
    rendered = [S.render(sc, res) for sc in scenes]
    return torch.stack([r[0] for r in rendered]), [r[1] for r in rendered]


# The pack's sample scene set moving: 8 frames, circle down-left, square up-right (5 px a frame).
SAMPLE_CLIP = Clip(S.SAMPLE, ((-3.0, 4.0), (3.0, -4.0)), FRAMES)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def save_apng(images: torch.Tensor, path: Path, duration_ms: int = FRAME_MS) -> None:
    """An IMAGE batch ``[F, H, W, 3]`` as a lossless animated PNG (every frame stored; no metadata,
    fixed compression: re-running it leaves the file unchanged)."""
    from PIL import Image

    frames = [Image.fromarray(a) for a in to_uint8(images)]
    frames[0].save(path, format="PNG", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0,
                   optimize=False, compress_level=9, default_image=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    args = p.parse_args()
    assert valid(SAMPLE_CLIP)
    images, _ = render_clip(SAMPLE_CLIP.scenes())
    args.out.mkdir(parents=True, exist_ok=True)
    save_apng(images, args.out / CLIP_ASSET)
    print(f"wrote {args.out / CLIP_ASSET} ({SAMPLE_CLIP.caption}, {SAMPLE_CLIP.frames} frames)")


if __name__ == "__main__":
    main()
