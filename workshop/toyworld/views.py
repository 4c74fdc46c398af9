"""Toy view sets (issue 83): a world-2 scene seen from shifted viewpoints, its objects moving by parallax.

A view set is ``views`` scenes of toy world 2 (``toyworld.scenes``): one scene seen by a camera
shifted sideways (and, as an option, a little up or down) between views, as GaussCtrl's and
Instruct-NeRF2NeRF's view sets are one scene seen from several cameras (Wu et al., GaussCtrl, ECCV
2024; Haque et al., ICCV 2023). The world is flat-coloured and drawn in orthographic boxes, so the
camera is a pinhole translated parallel to the image plane: each object has a ``depth`` (1 the
nearest, ``DEPTH_RANGE``), and a camera shift ``(x, y)`` moves its centre by ``-(x, y) / depth``
(the parallax of a translated camera falls as 1 / depth: the near object moves most, the background,
at infinity, not at all; a translation parallel to the image plane keeps every object's size). No
object hides another: every view is a scene of the world, every box inside the image
(``scenes.inside``) and the two boxes apart (``scenes.boxes_apart``), as ``clips.valid`` checks
frames. Rendered exactly by ``scenes.render`` view by view; the view set as the host sees it is an
IMAGE batch ``[V, H, W, 3]`` (the lead's convention: a view set is an IMAGE batch of V >= 2 views
of one size), the clip's layout (``clips.render_clip``).

The cameras of a set of V views are ``x_v = (v - (V - 1) / 2) * step`` (evenly spaced, centred on the
source scene's camera, ``step`` canonical px of parallax at depth 1 between neighbouring views,
``STEP_RANGE``, either direction) and ``y_v`` drawn in ``[-vertical, vertical]`` (``VERTICAL``; 0
keeps the views level). The source scene of the still edit case is the view of the centre camera
(0, 0) (between the two middle views for an even V).

Edits of a view set are the still benchmark's (``scenes.edit_cases``: an object's colour, its
shape, the background, dropping an object) applied to every view (``clips.edit_scene``); the exact
answer of view v is view v with that edit.

``SAMPLE_VIEWS``: the pack's sample scene (``scenes.SAMPLE``, "a red circle and a blue square on a
green background") seen by 4 level cameras 20 px apart, the circle near (depth 1: 20 px a view),
the square twice as far (10 px a view): the bundled ``assets/toy_views_two_objects.png``, a 4-frame
lossless multi-frame PNG that the stock Load Image node loads as an IMAGE batch of 4.

The judge (``view_metrics``) is the clip judge's (``clip_judge.clip_metrics``: a view set is a clip's
shape), read per view, with the view set's agreement named: ``agreement`` 1 where the edited object's
colour and shape (the background; a drop: its absence) read the same in every view (the clip
judge's ``consistent``), ``agreeing`` the share of views whose reading is the set's most common one,
``size_spread`` the edited object's read size spread over the views, and per view the still
benchmark's edit success, other object kept and background PSNR.

    python -m workshop.toyworld.views [--out assets/]     (writes the asset)
"""
from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import scenes as S
from .clips import ClipEditCase, edit_scene, render_clip, save_apng
from .clips import valid as clip_valid
from .clip_judge import clip_metrics

VIEWS = 4                   # the benchmark's views per set (GaussCtrl's 4 reference views; Hunyuan3D-2's 4 views)
STEP_RANGE = (12.0, 24.0)   # canonical px of parallax at depth 1 between neighbouring cameras
DEPTH_RANGE = (1.0, 3.0)    # an object's depth: 1 the nearest (moves the full step), 3 a third of it
VERTICAL = 4.0              # the largest vertical camera shift (canonical px; drawn per view)
VIEWS_ASSET = "toy_views_two_objects.png"
VIEW_MS = 500               # the asset's frame duration (an orbit preview at 2 views a second)


@dataclass(frozen=True)
class ViewSet:
    """One scene seen by ``cameras``: ``centre`` the scene from camera (0, 0), ``depth`` one per object."""
    centre: S.Scene
    depth: tuple[float, ...]
    cameras: tuple[tuple[float, float], ...]   # (x, y) camera shift of each view, canonical px

    @property
    def views(self) -> int:
        return len(self.cameras)

    frames = views   # a view set is judged as a clip of its views (``clips.ClipEditCase``)

    def scene(self, v: int) -> S.Scene:
        """View ``v``'s scene: each object moved by the parallax ``-(x, y) / depth`` of camera v."""
        x, y = self.cameras[v]
        objs = tuple(replace(o, cx=o.cx - x / d, cy=o.cy - y / d) for o, d in zip(self.centre.objects, self.depth))
        return S.Scene(self.centre.background, objs)

    def scenes(self) -> list[S.Scene]:
        return [self.scene(v) for v in range(self.views)]

    @property
    def caption(self) -> str:
        return self.centre.caption


def cameras(views: int, step: float, vertical: tuple[float, ...] = ()) -> tuple[tuple[float, float], ...]:
    """``views`` cameras ``step`` px apart along x, centred on 0; ``vertical`` their y (0 where not given)."""
    ys = tuple(vertical) + (0.0,) * (views - len(vertical))
    return tuple(((v - (views - 1) / 2) * step, ys[v]) for v in range(views))


def valid(vs: ViewSet) -> bool:
    """Every view a scene of the world: boxes inside the image and apart; one depth per object."""
    if len(vs.depth) != len(vs.centre.objects) or not all(d > 0 for d in vs.depth):
        return False
    return clip_valid(vs)   # every view as a clip's frame: its scenes() are the views


def shifted(rng: random.Random, centre: S.Scene, views: int = VIEWS, step: tuple[float, float] = STEP_RANGE,
            vertical: float = VERTICAL, tries: int = 2000) -> ViewSet | None:
    """A view set of ``centre`` with random depths (``DEPTH_RANGE``), a random step (``step``, either
    direction) and vertical shifts in ``[-vertical, vertical]``, redrawn until every view is valid;
    None if ``tries`` draws all fail."""
    for _ in range(tries):
        depth = tuple(rng.uniform(*DEPTH_RANGE) for _ in centre.objects)
        s = rng.uniform(*step) * rng.choice((-1.0, 1.0))
        ys = tuple(rng.uniform(-vertical, vertical) for _ in range(views))
        vs = ViewSet(centre, depth, cameras(views, s, ys))
        if valid(vs):
            return vs
    return None


def random_views(rng: random.Random, content: S.Scene, views: int = VIEWS, step: tuple[float, float] = STEP_RANGE,
                 vertical: float = VERTICAL) -> ViewSet:
    """A valid view set of ``content``'s objects (colours, shapes, sizes, background): from its own
    positions when some cameras fit, else from redrawn positions (same content and sizes)."""
    vs = shifted(rng, content, views, step, vertical, tries=200)
    while vs is None:
        objs = []
        for o in content.objects:
            lo, hi = o.size + S.MARGIN, S.SIZE - o.size - S.MARGIN
            objs.append(replace(o, cx=rng.uniform(lo, hi), cy=rng.uniform(lo, hi)))
        if all(S.boxes_apart(a, b) for i, a in enumerate(objs) for b in objs[i + 1:]):
            vs = shifted(rng, S.Scene(content.background, tuple(objs)), views, step, vertical, tries=50)
    return vs


@dataclass(frozen=True)
class ViewEditCase(ClipEditCase):
    """A still edit case (``scenes.EditCase``) applied to every view of a view set. ``frame_cases``
    (= ``view_cases``) and ``kind`` are what ``clip_judge.clip_metrics`` reads: a view set is judged
    as a clip of its views."""

    @property
    def views(self) -> ViewSet:
        """The source view set."""
        return self.clip

    view_case = ClipEditCase.frame_case
    view_cases = ClipEditCase.frame_cases


def view_edit_cases(n: int = 8, seed: int = 0, views: int = VIEWS, vertical: float = VERTICAL,
                    kinds: tuple[str, ...] = S.EDIT_KINDS) -> list[ViewEditCase]:
    """``n`` view edit cases: the still benchmark's ``scenes.edit_cases(n, seed)`` (same contents and
    edits, kinds in turn), each scene seen by ``views`` shifted cameras (from their own seed stream)."""
    rng = random.Random(20_000 + seed)
    out = []
    for case in S.edit_cases(n, seed=seed, kinds=kinds):
        vs = random_views(rng, case.source, views, vertical=vertical)
        centre = S.EditCase(case.kind, vs.centre, edit_scene(case, vs.centre), case.index)
        out.append(ViewEditCase(centre, vs))
    return out


def render_views(vs: ViewSet | list[S.Scene], res: int = S.SIZE) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(IMAGE batch ``[V, res, res, 3]``, each view's exact masks) by ``scenes.render`` (``clips.render_clip``)."""
    return render_clip(vs.scenes() if isinstance(vs, ViewSet) else list(vs), res)


def view_metrics(vc: ViewEditCase, images: torch.Tensor, edit: bool = True) -> dict:
    """The clip judge's metrics of the output views ``images`` ``[V, H, W, 3]`` (``clip_metrics``: per
    view edit success, other kept and background PSNR, averaged, and their per-view lists under
    ``per_frame``), with the view set's agreement: ``agreement`` (its ``consistent``: one reading of the
    edited thing over every view) and ``agreeing`` (the share of views reading the most common one)."""
    m = clip_metrics(vc, images, edit)
    common = Counter(m["readings"]).most_common(1)[0][1]
    return {**m, "agreement": m["consistent"], "agreeing": common / len(m["readings"])}


# The pack's sample scene from 4 level cameras 20 px apart: the circle near (depth 1), the square at depth 2.
SAMPLE_VIEWS = ViewSet(S.SAMPLE, (1.0, 2.0), cameras(VIEWS, 20.0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    args = p.parse_args()
    assert valid(SAMPLE_VIEWS)
    images, _ = render_views(SAMPLE_VIEWS)
    args.out.mkdir(parents=True, exist_ok=True)
    save_apng(images, args.out / VIEWS_ASSET, duration_ms=VIEW_MS)
    print(f"wrote {args.out / VIEWS_ASSET} ({SAMPLE_VIEWS.caption}, {SAMPLE_VIEWS.views} views)")


if __name__ == "__main__":
    main()
