"""The exact judge: reads background colour, object colour, shape, centre and size from an image.

Works on any image of the toy world, rendered or generated: the background is the mode of
the border ring's palette labels; the object mask is every pixel whose nearest palette colour
is another one; the object colour is the most common label in the mask; the shape is the one whose
rendering stretched to the mask's bounding box overlaps the mask best (IoU). Stretched: a drawn square a
little taller than wide is a square (fitted at its longer side, as before 2026-11-28, the circle could
overlap it as well and was read in its place; the world's own shapes read the same either way).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .world import COLOURS, PALETTE, SHAPES, Scene, coverage

MIN_AREA = 30  # pixels; below this there is no object


@dataclass(frozen=True)
class Reading:
    background: str
    colour: str | None
    shape: str | None
    cx: float
    cy: float
    size: float
    area: int
    shape_iou: float
    mask: torch.Tensor  # [H, W] bool

    def matches(self, scene: Scene, what: tuple[str, ...] = ("background", "colour", "shape")) -> bool:
        return all(getattr(self, k) == getattr(scene, k) for k in what)

    def same_structure(self, other: "Reading | Scene", pos_tol: float = 6.0, size_tol: float = 0.2) -> bool:
        """Centre within ``pos_tol`` pixels and size within ``size_tol`` (relative) of ``other``."""
        if self.colour is None:
            return False
        d = ((self.cx - other.cx) ** 2 + (self.cy - other.cy) ** 2) ** 0.5
        return d <= pos_tol and abs(self.size - other.size) <= size_tol * other.size


_PAL = torch.tensor([PALETTE[c] for c in COLOURS], dtype=torch.float32)


def nearest_colour(rgb: torch.Tensor) -> str:
    return COLOURS[int(((_PAL - rgb.float().view(1, 3)) ** 2).sum(1).argmin())]


def classify(image: torch.Tensor) -> torch.Tensor:
    """Index into COLOURS of the nearest palette colour of every pixel, ``[H, W]``."""
    return ((image.float().unsqueeze(-2) - _PAL) ** 2).sum(-1).argmin(-1)


def judge(image: torch.Tensor) -> Reading:
    """Read an image ``[H, W, 3]`` (or ``[1, H, W, 3]``) in 0..1.

    Every pixel is labelled with its nearest palette colour; the background is the most common
    label of the 2-pixel border ring, the object mask every pixel of another label, the object
    colour the most common label inside the mask.
    """
    if image.ndim == 4:
        image = image[0]
    img = image.float().cpu()
    h, w, _ = img.shape
    labels = classify(img)
    ring = torch.cat([labels[:2].reshape(-1), labels[-2:].reshape(-1),
                      labels[:, :2].reshape(-1), labels[:, -2:].reshape(-1)])
    bg = int(torch.bincount(ring, minlength=len(COLOURS)).argmax())
    background = COLOURS[bg]
    mask = labels != bg
    area = int(mask.sum())
    if area < MIN_AREA:
        return Reading(background, None, None, float("nan"), float("nan"), 0.0, area, 0.0, mask)
    colour = COLOURS[int(torch.bincount(labels[mask], minlength=len(COLOURS)).argmax())]
    # Bounding box from rows/columns holding at least 2 mask pixels (ignores stray specks).
    rows = torch.nonzero(mask.sum(1) >= 2).flatten()
    cols = torch.nonzero(mask.sum(0) >= 2).flatten()
    if len(rows) == 0 or len(cols) == 0:
        return Reading(background, colour, None, float("nan"), float("nan"), 0.0, area, 0.0, mask)
    y0, y1 = float(rows[0]), float(rows[-1]) + 1
    x0, x1 = float(cols[0]), float(cols[-1]) + 1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    size = max(x1 - x0, y1 - y0) / 2
    best, best_iou = None, -1.0
    for shape in SHAPES:
        tmpl = coverage(shape, cx, cy, (x1 - x0) / 2, res=h, ss=2, height=(y1 - y0) / 2) > 0.5
        inter = float((tmpl & mask).sum())
        union = float((tmpl | mask).sum())
        iou = inter / union if union else 0.0
        if iou > best_iou:
            best, best_iou = shape, iou
    return Reading(background, colour, best, cx, cy, size, area, best_iou, mask)


def filled(reading: Reading, inner: float = 0.4) -> float:
    """Fraction of the object's inner box (``inner`` x its half-extent around its centre) that the
    object covers: about 1 for the world's solid shapes, about 0 for a hollow one (a frame: the
    subject taught in issue 28's DreamBooth benchmark). NaN when there is no object."""
    if reading.colour is None or reading.size != reading.size or reading.size <= 0:
        return float("nan")
    return box_fraction(reading.mask, reading.cx, reading.cy, inner * reading.size)


def box_fraction(mask: torch.Tensor, cx: float, cy: float, half: float) -> float:
    """Fraction of the box of half-side ``half`` around (``cx``, ``cy``) (pixels of ``mask``) that
    ``mask`` covers; NaN where the box is empty."""
    h, w = mask.shape
    y0, y1 = max(int(round(cy - half)), 0), min(int(round(cy + half)), h)
    x0, x1 = max(int(round(cx - half)), 0), min(int(round(cx + half)), w)
    box = mask[y0:y1, x0:x1]
    return float(box.float().mean()) if box.numel() else float("nan")
