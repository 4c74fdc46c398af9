"""What a spatial edit asks for, and the checks every spatial node shares: a region (a MASK at the
image's size) moved by an offset and scaled about its centre (DragonDiffusion's and DiffEditor's
move and resize, Self-Guidance's position and size), and handle -> target point pairs (DragDiffusion's
and DragonDiffusion's drag), written as text a user types or made from a pair of masks.

Conventions: pixels of the image (x to the right, y down), the origin at the top-left pixel's
corner; a mask is ``[H, W]`` or ``[B, H, W]`` with values 0-1 (the host's MASK), its region the pixels
above 0.5. The checks raise ``NodeInputError`` naming the node and the input, so a node calls them as
they are and the pure layers refuse as the nodes do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..refusals import NodeInputError, check_finite

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """A region's bounding box in pixels: ``x0 <= x < x1``, ``y0 <= y < y1``."""
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> Point:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def size(self) -> Point:
        return self.x1 - self.x0, self.y1 - self.y0

    def moved(self, dx: float, dy: float, scale: float) -> "Box":
        """The box moved by ``(dx, dy)`` and scaled by ``scale`` about its centre."""
        (cx, cy), (w, h) = self.centre, self.size
        cx, cy, w, h = cx + dx, cy + dy, w * scale, h * scale
        return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _plane(mask: torch.Tensor) -> torch.Tensor:
    """The first plane of a MASK (``[H, W]`` or ``[B, H, W]``)."""
    return mask if mask.ndim == 2 else mask[0]


def region_box(mask: torch.Tensor) -> Box | None:
    """The bounding box of the mask's region (its pixels above 0.5), None when it has none.
    Read once per run, at node time (never in the sampling path)."""
    inside = _plane(mask) > 0.5
    rows, cols = inside.any(dim=1), inside.any(dim=0)
    if not bool(rows.any()):
        return None
    ys, xs = torch.nonzero(rows).flatten(), torch.nonzero(cols).flatten()
    return Box(float(xs[0]), float(ys[0]), float(xs[-1]) + 1, float(ys[-1]) + 1)


def check_move(node: str, mask: torch.Tensor, dx: float, dy: float, scale: float, mask_input: str = "mask") -> Box:
    """Refuse a move that cannot work: no region in ``mask_input``, a scale of 0 or less, or an offset or
    scale that takes part of the region off the picture. Returns the moved region's box."""
    check_finite(node, dx=dx, dy=dy, scale=scale)
    if scale <= 0:
        raise NodeInputError(node, f"input 'scale' is {scale:g}; give a factor above 0 (1 keeps the size, 0.5 halves "
                                   f"it, 2 doubles it).")
    box = region_box(mask)
    if box is None:
        raise NodeInputError(node, f"input '{mask_input}' marks no region (no pixel above 0.5); paint the object to "
                                   f"move, or make the mask from a word or a segmentation node.")
    height, width = _plane(mask).shape
    target = box.moved(dx, dy, scale)
    if target.x0 < 0 or target.y0 < 0 or target.x1 > width or target.y1 > height:
        w, h = target.size
        (cx, cy) = box.centre
        lo_x, hi_x = w / 2 - cx, width - w / 2 - cx
        lo_y, hi_y = h / 2 - cy, height - h / 2 - cy
        fix = (f"with scale {scale:g} give dx from {lo_x:.0f} to {hi_x:.0f} and dy from {lo_y:.0f} to {hi_y:.0f}"
               if lo_x <= hi_x and lo_y <= hi_y else "give a smaller scale")
        raise NodeInputError(node, f"inputs 'dx' {dx:g}, 'dy' {dy:g} and 'scale' {scale:g} take the region "
                                   f"({box.x0:.0f}-{box.x1:.0f} x {box.y0:.0f}-{box.y1:.0f} px) to "
                                   f"{target.x0:.0f}-{target.x1:.0f} x {target.y0:.0f}-{target.y1:.0f} px, off the "
                                   f"{width}x{height} picture; {fix}.")
    return target


def moved_mask(mask: torch.Tensor, dx: float, dy: float, scale: float) -> torch.Tensor:
    """The mask's region moved by ``(dx, dy)`` pixels and scaled by ``scale`` about its box's centre
    (bilinear resampling; the same shape, device and dtype as ``mask``)."""
    plane = mask if mask.ndim == 3 else mask[None]
    box = region_box(plane)
    if box is None:
        return torch.zeros_like(mask)
    _, height, width = plane.shape
    cx, cy = box.centre
    # output pixel p (centre, in px) reads input pixel (p - c - d) / s + c
    xs = (torch.arange(width, device=mask.device, dtype=torch.float32) + 0.5 - cx - dx) / scale + cx
    ys = (torch.arange(height, device=mask.device, dtype=torch.float32) + 0.5 - cy - dy) / scale + cy
    gx, gy = xs / width * 2 - 1, ys / height * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None].expand(plane.shape[0], -1, -1, -1)
    out = F.grid_sample(plane[:, None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out[:, 0].to(mask.dtype)
    return out if mask.ndim == 3 else out[0]


_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_PAIR = re.compile(rf"^\(?{_NUMBER},{_NUMBER}\)?\s*->\s*\(?{_NUMBER},{_NUMBER}\)?$")
POINTS_FORMAT = "'x,y -> x,y' per pair (handle -> target, image pixels), pairs separated by ';' or new lines"


def parse_points(node: str, text: str, name: str = "points") -> list[tuple[Point, Point]]:
    """Handle -> target pairs from text such as ``"120,200 -> 160,200; 300,310 -> 300,280"``."""
    pairs = []
    for part in (p.strip() for p in re.split(r"[;\n]", text)):
        if not part:
            continue
        found = _PAIR.match(part)
        if found is None:
            raise NodeInputError(node, f"input '{name}' has '{part}', which is not a point pair; write "
                                       f"{POINTS_FORMAT}, e.g. '120,200 -> 160,200'.")
        hx, hy, tx, ty = (float(v) for v in found.groups())
        pairs.append(((hx, hy), (tx, ty)))
    if not pairs:
        raise NodeInputError(node, f"input '{name}' is empty; write {POINTS_FORMAT}, e.g. '120,200 -> 160,200'.")
    return pairs


def check_points(node: str, pairs: list[tuple[Point, Point]], width: int, height: int, name: str = "points") -> None:
    """Refuse a handle or target point outside the ``width`` x ``height`` picture."""
    for handle, target in pairs:
        for what, (x, y) in (("handle", handle), ("target", target)):
            if not (0 <= x < width and 0 <= y < height):
                raise NodeInputError(node, f"input '{name}' has the {what} point ({x:g}, {y:g}) outside the "
                                           f"{width}x{height} picture; give x from 0 to {width - 1} and y from 0 to "
                                           f"{height - 1}.")


def points_from_masks(node: str, handle: torch.Tensor, target: torch.Tensor) -> list[tuple[Point, Point]]:
    """One handle -> target pair from a pair of masks: the centre of each mask's region."""
    pair = []
    for name, mask in (("handle_mask", handle), ("target_mask", target)):
        box = region_box(mask)
        if box is None:
            raise NodeInputError(node, f"input '{name}' marks no region (no pixel above 0.5); paint a dot where the "
                                       f"point is.")
        inside = (_plane(mask) > 0.5).float()
        ys, xs = torch.meshgrid(torch.arange(inside.shape[0], dtype=torch.float32, device=inside.device),
                                torch.arange(inside.shape[1], dtype=torch.float32, device=inside.device), indexing="ij")
        total = inside.sum()
        pair.append((float((xs * inside).sum() / total), float((ys * inside).sum() / total)))
    return [(pair[0], pair[1])]
