"""Toy world 2 (issue 12): scenes of two objects, so that every word must find its place.

A scene is a flat background colour and one or two objects (two in every scene the world
draws; one only as the target of a "drop" edit). Objects never overlap: their bounding boxes
are at least ``GAP`` apart, so a shape edit (same box) keeps them apart too. Within a scene all
colours differ (background, first object, second object) and the two shapes differ, so each
noun names exactly one object and each colour word exactly one region.

Images are float tensors ``[H, W, 3]`` in 0..1 (ComfyUI's IMAGE layout without the batch).
Scene geometry is in pixels of the canonical ``SIZE`` x ``SIZE`` image; ``render(scene, res)``
draws it at any other resolution by scaling. Every object is its bounding box (centre
``(cx, cy)``, half-extent ``size``) and a shape drawn in it exactly as in world 1
(``toyworld.world``: circle, square, triangle with its apex at the top). Edges are
anti-aliased by 4x4 supersampling; an object's exact mask is its coverage > 0.5.

Caption template, every word one CLIP token::

    "a red circle and a blue square on a green background"     (two objects, in scene order)
    "a red circle on a green background"                        (one object, world 1's template)

Swapping a colour or a shape word keeps the token count; dropping an object removes four
words ("and a blue square", or "a red circle and"): the token-count-changing edit for
Prompt-to-Prompt's refine mode, whose exact answer is the scene without that object.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import torch

from .world import COLOURS, PALETTE, SHAPES, psnr, rgb  # noqa: F401  (re-exported)

SIZE = 512  # canonical image side in pixels (the model's image size; see SCENES-NOTES.md)

# Geometry as fractions of the image side (scaled by SIZE below).
SIZE_RANGE_FRAC = (0.15, 0.22)  # half-extent of an object's box
MARGIN_FRAC = 0.02              # every box stays this far inside the image
GAP_FRAC = 0.04                 # boxes of two objects are at least this far apart (in x or in y)

SIZE_RANGE = (SIZE_RANGE_FRAC[0] * SIZE, SIZE_RANGE_FRAC[1] * SIZE)
MARGIN = MARGIN_FRAC * SIZE
GAP = GAP_FRAC * SIZE

TEMPLATE_1 = "a {c0} {s0} on a {bg} background"
TEMPLATE_2 = "a {c0} {s0} and a {c1} {s1} on a {bg} background"


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    cx: float
    cy: float
    size: float

    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the bounding box, canonical pixels."""
        return (self.cx - self.size, self.cy - self.size, self.cx + self.size, self.cy + self.size)


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[Obj, ...]

    @property
    def caption(self) -> str:
        return caption([(o.colour, o.shape) for o in self.objects], self.background)

    def without(self, index: int) -> "Scene":
        return Scene(self.background, tuple(o for i, o in enumerate(self.objects) if i != index))

    def with_object(self, index: int, **changes) -> "Scene":
        objs = list(self.objects)
        objs[index] = replace(objs[index], **changes)
        return Scene(self.background, tuple(objs))


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------

def caption(objects: list[tuple[str, str]], background: str) -> str:
    """The template caption of (colour, shape) pairs, in order, on ``background``."""
    if len(objects) == 1:
        (c0, s0), = objects
        return TEMPLATE_1.format(c0=c0, s0=s0, bg=background)
    if len(objects) == 2:
        (c0, s0), (c1, s1) = objects
        return TEMPLATE_2.format(c0=c0, s0=s0, c1=c1, s1=s1, bg=background)
    raise ValueError(f"a scene caption names one or two objects, not {len(objects)}")


def parse_caption(text: str) -> tuple[list[tuple[str, str]], str]:
    """([(colour, shape), ...], background) of a template caption; ValueError otherwise."""
    w = text.split()
    bad = ValueError(f"not a toy-world-2 caption: {text!r}")
    if len(w) == 7 and w[0] == "a" and w[3:5] == ["on", "a"] and w[6] == "background":
        objs, bg = [(w[1], w[2])], w[5]
    elif (len(w) == 11 and w[0] == "a" and w[3:5] == ["and", "a"] and w[7:9] == ["on", "a"]
          and w[10] == "background"):
        objs, bg = [(w[1], w[2]), (w[5], w[6])], w[9]
    else:
        raise bad
    for c, s in objs:
        if c not in PALETTE or s not in SHAPES:
            raise bad
    if bg not in PALETTE:
        raise bad
    return objs, bg


def valid_content(objects: list[tuple[str, str]], background: str) -> bool:
    """All colours differ (background included) and all shapes differ."""
    cols = [c for c, _ in objects] + [background]
    shapes = [s for _, s in objects]
    return len(set(cols)) == len(cols) and len(set(shapes)) == len(shapes)


def all_captions(n_objects: tuple[int, ...] = (1, 2)) -> list[str]:
    """Every caption of the world, in a fixed order (one-object captions first)."""
    out = []
    if 1 in n_objects:
        out += [caption([(c, s)], b) for b in COLOURS for c in COLOURS if c != b for s in SHAPES]
    if 2 in n_objects:
        for b in COLOURS:
            for c0 in COLOURS:
                for c1 in COLOURS:
                    for s0 in SHAPES:
                        for s1 in SHAPES:
                            if valid_content([(c0, s0), (c1, s1)], b):
                                out.append(caption([(c0, s0), (c1, s1)], b))
    return out


# ---------------------------------------------------------------------------------------------
# Random scenes
# ---------------------------------------------------------------------------------------------

def boxes_apart(a: Obj, b: Obj, gap: float = GAP) -> bool:
    """Bounding boxes at least ``gap`` apart along x or along y."""
    return (abs(a.cx - b.cx) >= a.size + b.size + gap) or (abs(a.cy - b.cy) >= a.size + b.size + gap)


def inside(o: Obj, margin: float = MARGIN, side: float = SIZE) -> bool:
    return (o.size + margin <= o.cx <= side - o.size - margin) and (o.size + margin <= o.cy <= side - o.size - margin)


def _random_obj(rng: random.Random, colour: str, shape: str) -> Obj:
    size = rng.uniform(*SIZE_RANGE)
    lo, hi = size + MARGIN, SIZE - size - MARGIN
    return Obj(colour, shape, rng.uniform(lo, hi), rng.uniform(lo, hi), size)


def _place_all(rng: random.Random, content: list[tuple[str, str]]) -> tuple[Obj, ...]:
    """Objects drawn together (sizes and centres uniform), redrawn until all boxes are apart."""
    for _ in range(10_000):
        objs = [_random_obj(rng, c, s) for c, s in content]
        if all(boxes_apart(a, b) for i, a in enumerate(objs) for b in objs[i + 1:]):
            return tuple(objs)
    raise RuntimeError("could not place the objects")  # pragma: no cover (acceptance is ~30%)


def random_scene(rng: random.Random, n_objects: int = 2, background: str | None = None,
                 colours: list[str] | None = None, shapes: list[str] | None = None) -> Scene:
    """A random scene: distinct colours (background included) and distinct shapes, boxes apart.
    Object order (= caption order) is random, not tied to position."""
    bg = background or rng.choice(COLOURS)
    cols = list(colours) if colours else rng.sample([c for c in COLOURS if c != bg], n_objects)
    shps = list(shapes) if shapes else rng.sample(list(SHAPES), n_objects)
    if not valid_content(list(zip(cols, shps)), bg) or len(cols) != n_objects or len(shps) != n_objects:
        raise ValueError(f"invalid scene content {cols} {shps} on {bg}")
    return Scene(bg, _place_all(rng, list(zip(cols, shps))))


def random_scene_for_caption(rng: random.Random, text: str) -> Scene:
    objs, bg = parse_caption(text)
    return random_scene(rng, len(objs), bg, [c for c, _ in objs], [s for _, s in objs])


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

def _inside(shape: str, dx: torch.Tensor, dy: torch.Tensor, size: float) -> torch.Tensor:
    if shape == "circle":
        return dx * dx + dy * dy <= size * size
    if shape == "square":
        return (dx.abs() <= size) & (dy.abs() <= size)
    if shape == "triangle":
        t = (dy + size) / (2 * size)  # 0 at the top of the box, 1 at the bottom
        return (t >= 0) & (t <= 1) & (dx.abs() <= t * size)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


_HALF_DIAG = 0.75  # > sqrt(2)/2: a pixel lies within this distance of its centre


def _sure(shape: str, dx: torch.Tensor, dy: torch.Tensor, size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(whole pixel inside, whole pixel outside) from the pixel centres' offsets: the shape is
    an intersection of half-planes (or a disc), so a centre farther than half a diagonal on
    either side of every boundary decides the whole pixel."""
    h = _HALF_DIAG
    if shape == "circle":
        d = torch.sqrt(dx * dx + dy * dy)
        return d <= size - h, d > size + h
    if shape == "square":
        return ((dx.abs() <= size - h) & (dy.abs() <= size - h),
                (dx.abs() > size + h) | (dy.abs() > size + h))
    if shape == "triangle":
        side = (2 * dx.abs() - dy - size) / math.sqrt(5.0)  # signed distance to the slanted sides
        return ((dy >= -size + h) & (dy <= size - h) & (side <= -h),
                (dy < -size - h) | (dy > size + h) | (side > h))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def coverage_patch(shape: str, cx: float, cy: float, size: float, res: int, ss: int = 4,
                   height: float | None = None) -> tuple[int, int, torch.Tensor]:
    """(y0, x0, coverage ``[h, w]``) of a shape on a ``res`` x ``res`` pixel grid, computed only
    over the pixels its box touches: the same numbers as ``toyworld.world.coverage`` (``ss`` x
    ``ss`` supersampling), with the supersampling done only where a boundary crosses the pixel.
    ``height``: another half-height than ``size`` (the half-width), the shape stretched to that box
    (the judge's templates; every pixel of the box supersampled)."""
    half_h = size if height is None else height
    x0 = max(0, int(math.floor(cx - size)) - 1)
    y0 = max(0, int(math.floor(cy - half_h)) - 1)
    x1 = min(res, int(math.ceil(cx + size)) + 1)
    y1 = min(res, int(math.ceil(cy + half_h)) + 1)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, torch.zeros(0, 0)
    h, w = y1 - y0, x1 - x0
    dx = (torch.arange(w, dtype=torch.float32) + x0 + 0.5 - cx).view(1, w).expand(h, w)
    dy = (torch.arange(h, dtype=torch.float32) + y0 + 0.5 - cy).view(h, 1).expand(h, w)
    if height is None:
        sure_in, sure_out = _sure(shape, dx, dy, size)
    else:   # the half-planes' distances are not the stretched shape's: no pixel is sure
        sure_in = sure_out = torch.zeros(h, w, dtype=torch.bool)
    cov = sure_in.float()
    edge = ~(sure_in | sure_out)
    if edge.any():
        iy, ix = torch.nonzero(edge, as_tuple=True)
        sub = (torch.arange(ss, dtype=torch.float32) + 0.5) / ss
        px = (ix.float() + x0).view(-1, 1, 1) + sub.view(1, 1, ss) - cx  # [n, 1, ss]
        py = (iy.float() + y0).view(-1, 1, 1) + sub.view(1, ss, 1) - cy  # [n, ss, 1]
        if height is not None:
            py = py * (size / height)
        n = len(ix)
        inside_ = _inside(shape, px.expand(n, ss, ss), py.expand(n, ss, ss), size)
        cov[iy, ix] = inside_.float().mean(dim=(1, 2))
    return y0, x0, cov


def object_coverage(o: Obj, res: int = SIZE, ss: int = 4) -> torch.Tensor:
    """``[res, res]`` coverage of one object at resolution ``res``."""
    k = res / SIZE
    full = torch.zeros(res, res)
    y0, x0, cov = coverage_patch(o.shape, o.cx * k, o.cy * k, o.size * k, res, ss)
    full[y0:y0 + cov.shape[0], x0:x0 + cov.shape[1]] = cov
    return full


def render(scene: Scene, res: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(image ``[res, res, 3]`` in 0..1, exact masks ``[n_objects, res, res]`` bool)."""
    k = res / SIZE
    img = rgb(scene.background).view(1, 1, 3).repeat(res, res, 1)
    masks = torch.zeros(len(scene.objects), res, res, dtype=torch.bool)
    for i, o in enumerate(scene.objects):
        y0, x0, cov = coverage_patch(o.shape, o.cx * k, o.cy * k, o.size * k, res)
        h, w = cov.shape
        win = img[y0:y0 + h, x0:x0 + w]
        win.mul_(1 - cov[..., None]).add_(rgb(o.colour) * cov[..., None])
        masks[i, y0:y0 + h, x0:x0 + w] = cov > 0.5
    return img, masks


def render_in_box(scene: Scene, index: int, box: tuple[float, float, float, float],
                  res: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``render`` with object ``index`` drawn stretched to ``box`` = (x0, y0, x1, y1), canonical pixels,
    instead of its own square box (a circle becomes an ellipse, a triangle keeps its apex at the top
    centre): the exact answer of a box corner dragged (issue 85). A square ``box`` equal to the object's
    own gives ``render``'s image up to float rounding."""
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {box} is empty; give x0 < x1 and y0 < y1")
    k = res / SIZE
    img = rgb(scene.background).view(1, 1, 3).repeat(res, res, 1)
    masks = torch.zeros(len(scene.objects), res, res, dtype=torch.bool)
    for i, o in enumerate(scene.objects):
        if i == index:
            py, px, cov = coverage_patch(o.shape, (x0 + x1) / 2 * k, (y0 + y1) / 2 * k, (x1 - x0) / 2 * k, res,
                                         height=(y1 - y0) / 2 * k)
        else:
            py, px, cov = coverage_patch(o.shape, o.cx * k, o.cy * k, o.size * k, res)
        h, w = cov.shape
        img[py:py + h, px:px + w].mul_(1 - cov[..., None]).add_(rgb(o.colour) * cov[..., None])
        masks[i, py:py + h, px:px + w] = cov > 0.5
    return img, masks


def render_batch(scenes: list[Scene], res: int = SIZE, device: torch.device | str | None = None) -> torch.Tensor:
    """``[B, res, res, 3]`` images (ComfyUI IMAGE layout). With ``device`` the whole batch is
    drawn at once on that device (training on a GPU): the same coverage as ``render``, every
    pixel supersampled 4 x 4 instead of only the edge pixels (equal up to float rounding)."""
    if device is None:
        return torch.stack([render(s, res)[0] for s in scenes])
    return _render_batch_vectorised(scenes, res, torch.device(device))


def _render_batch_vectorised(scenes: list[Scene], res: int, device: torch.device, ss: int = 4) -> torch.Tensor:
    n = len(scenes)
    img = torch.stack([rgb(s.background) for s in scenes]).to(device).view(n, 1, 1, 3).repeat(1, res, res, 1)
    for slot in range(max(len(s.objects) for s in scenes)):
        have = [i for i, s in enumerate(scenes) if len(s.objects) > slot]
        objs = [scenes[i].objects[slot] for i in have]
        cov = _coverage_vectorised(objs, res, device, ss)[..., None]
        colour = torch.stack([rgb(o.colour) for o in objs]).to(device).view(-1, 1, 1, 3)
        idx = torch.tensor(have, device=device)
        img[idx] = img[idx] * (1 - cov) + colour * cov
    return img


def _coverage_vectorised(objs: list[Obj], res: int, device: torch.device, ss: int) -> torch.Tensor:
    """``[len(objs), res, res]`` coverage of each object, every pixel supersampled ``ss`` x ``ss`` at once."""
    k = res / SIZE
    sub = (torch.arange(res * ss, device=device, dtype=torch.float32) + 0.5) / ss  # subsample centres
    cx = torch.tensor([o.cx * k for o in objs], device=device).view(-1, 1, 1)
    cy = torch.tensor([o.cy * k for o in objs], device=device).view(-1, 1, 1)
    size = torch.tensor([o.size * k for o in objs], device=device).view(-1, 1, 1)
    dx, dy = sub.view(1, 1, -1) - cx, sub.view(1, -1, 1) - cy          # [m, 1, S], [m, S, 1]
    inside_ = torch.zeros(len(objs), res * ss, res * ss, dtype=torch.bool, device=device)
    for shape in SHAPES:   # the same inequalities as ``render``, for the objects of each shape
        rows = [i for i, o in enumerate(objs) if o.shape == shape]
        if rows:
            inside_[rows] = _inside(shape, dx[rows], dy[rows], size[rows])
    return inside_.float().view(len(objs), res, ss, res, ss).mean(dim=(2, 4))


def object_coverages(scenes: list[Scene], res: int, device: torch.device | str, ss: int = 4) -> torch.Tensor:
    """``[B, most objects, res, res]``: each scene's objects' coverage (``object_coverage``'s, equal up to float
    rounding) drawn at once on ``device``; zero where a scene has fewer objects."""
    device = torch.device(device)
    out = torch.zeros(len(scenes), max(len(s.objects) for s in scenes), res, res, device=device)
    for slot in range(out.shape[1]):
        have = [i for i, s in enumerate(scenes) if len(s.objects) > slot]
        out[torch.tensor(have, device=device), slot] = _coverage_vectorised(
            [scenes[i].objects[slot] for i in have], res, device, ss)
    return out


# ---------------------------------------------------------------------------------------------
# Edit cases
# ---------------------------------------------------------------------------------------------

EDIT_KINDS: tuple[str, ...] = ("colour", "shape", "background", "drop")


@dataclass(frozen=True)
class EditCase:
    """One edit with its exact answer.

    ``kind``: "colour" (object ``index`` gets another colour), "shape" (object ``index`` gets
    the other shape in the same box), "background" (another background colour) or "drop"
    (object ``index`` is removed, the background shows through; the caption loses four words).
    What must not change: every object other than ``index`` (colour, shape, box), the background
    outside all objects (except for "background"), and for colour/shape edits the edited
    object's box. ``target`` is the exact answer; ``kept`` the source indices of the objects
    that must stay as they are (their index in ``target`` is ``target_index_of``).
    """
    kind: str
    source: Scene
    target: Scene
    index: int | None  # the edited object (None for a background edit)

    @property
    def source_caption(self) -> str:
        return self.source.caption

    @property
    def target_caption(self) -> str:
        return self.target.caption

    @property
    def kept(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.source.objects)) if i != self.index)

    def target_index_of(self, source_index: int) -> int | None:
        """Where source object ``source_index`` is in ``target.objects`` (None if dropped)."""
        if self.kind == "drop":
            if source_index == self.index:
                return None
            return source_index - (source_index > self.index)
        return source_index


# The pack's bundled sample image (assets/sample.png) and the example workflows' source scene.
SAMPLE = Scene("green", (Obj("red", "circle", 150.0, 170.0, 96.0), Obj("blue", "square", 380.0, 330.0, 90.0)))


def edit_target(source: Scene, kind: str, index: int | None, rng: random.Random) -> Scene:
    used = {source.background} | {o.colour for o in source.objects}
    if kind == "colour":
        return source.with_object(index, colour=rng.choice([c for c in COLOURS if c not in used]))
    if kind == "shape":
        taken = {o.shape for o in source.objects}
        return source.with_object(index, shape=rng.choice([s for s in SHAPES if s not in taken]))
    if kind == "background":
        return replace(source, background=rng.choice([c for c in COLOURS if c not in used]))
    if kind == "drop":
        return source.without(index)
    raise ValueError(f"unknown edit kind {kind!r}; expected one of {EDIT_KINDS}")


def edit_cases(n: int = 100, seed: int = 0, kinds: tuple[str, ...] = EDIT_KINDS) -> list[EditCase]:
    """``n`` edit cases of two-object scenes, kinds in turn, edited object alternating, from a
    fixed seed."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        src = random_scene(rng)
        index = None if kind == "background" else (i // len(kinds)) % 2
        cases.append(EditCase(kind, src, edit_target(src, kind, index, rng), index))
    return cases


def heldout_scenes(n: int = 60, seed: int = 20_000) -> list[Scene]:
    """Fixed evaluation scenes (two objects), never drawn by training (other seed stream)."""
    rng = random.Random(seed)
    return [random_scene(rng) for _ in range(n)]


def heldout_captions(n: int = 60, seed: int = 30_000) -> list[str]:
    """Fixed random two-object captions for the text-to-image gate."""
    rng = random.Random(seed)
    return [random_scene(rng).caption for _ in range(n)]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0
