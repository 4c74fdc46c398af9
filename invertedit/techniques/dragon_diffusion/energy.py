"""DragonDiffusion's and DiffEditor's energies (Mou et al., "DragonDiffusion: Enabling Drag-style
Manipulation on Diffusion Models", ICLR 2024; "DiffEditor: Boosting Accuracy and Flexibility on
Diffusion-based Image Editing", CVPR 2024), as the authors' released code defines them
(MC-E/DragonDiffusion, ``src/models/Sampler.py``'s ``guidance_move`` and ``guidance_drag``, the masks
of ``src/utils/utils.py``'s ``process_move`` and ``process_drag``).

The energies compare the UNet decoder's features of the latent being edited (``cur``) with those of
the inversion's latent at the same noise level (``ref``) by cosine similarity, over regions given
as boolean masks on a *grid* twice the size of the finest feature map (the code's ``up_scale`` 2;
on SD1.5 the features of the second and third up blocks, the grid a quarter of the image's
pixels). Every feature map is resized to the grid by nearest-neighbour interpolation, as the code
does (``F.interpolate`` with its default mode). An energy is ``w / (1 + 4 * similarity)`` (lower
when the features agree) or ``w * similarity`` (lower when they differ: the contrast and
inpainting terms that push the old place away from the object).

Move (and resize): the edit energy matches the moved region ``current`` of ``cur`` with the region
``target`` of ``ref`` resized by ``resize``, position by position; the content energy keeps the rest
(``other``) on ``ref``, makes the uncovered part of the old place (``non_overlap``) differ from the
object (contrast) and look, on average, like the background (inpainting).
Drag: for each handle -> target pair, a 3x3 patch of ``cur`` at the target matches the 3x3 patch
of ``ref`` at the handle; the consistency energy keeps everything outside the editable mask.

Where the code would take a mean over an empty region (a move by less than a grid cell, a drag
whose target patch covers its handle patch), it gets NaN and guides with NaN; here the term is
left out (documented in docs/faithfulness.md). Pure torch: no host.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

UP_SCALE = 2                     # the code's up_scale: the grid is twice the finest feature map
FEATURE_WEIGHTS = (0.5, 0.5)     # the code's loss_scale: the move energies' weight per feature map
GUIDANCE_FACTOR = {"move": 8e-2, "drag": 4e-2}   # the code's factor on the energies' gradients
ENERGY_UNIT = 1e3                # the demo's energy_scale slider is in thousands ("x1e3")


def on_device(masks, device):
    """A copy of ``masks`` (a ``MoveMasks`` or ``DragMasks``) with its tensors on ``device``: made once a run
    (outside inference mode where it runs under autograd)."""
    def move(v):
        if isinstance(v, torch.Tensor):
            return v.to(device).clone()   # a normal tensor (not an inference one): autograd may keep it
        if isinstance(v, tuple):
            return tuple(move(t) for t in v)
        return v
    return replace(masks, **{f.name: move(getattr(masks, f.name)) for f in fields(masks)})


class RegionError(ValueError):
    """A request the masks cannot honour (the code's 'Resize out of bounds')."""


def resized(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``t`` ([N, C, h, w]) at ``size`` by nearest-neighbour interpolation (``F.interpolate``'s default)."""
    return F.interpolate(t, size=(int(size[0]), int(size[1])))


def cosine(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The code's ``nn.CosineSimilarity(dim=1)`` (eps 1e-8)."""
    return F.cosine_similarity(a, b, dim=dim, eps=1e-8)


def vectors(feature: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The feature vectors ``[n, C]`` of ``feature`` ([1, C, h, w]) at the ``region`` ([h, w] bool)'s
    positions, in raster order (the code's ``f[mask.repeat(1, C, 1, 1)].view(C, -1).permute(1, 0)``)."""
    return feature[0][:, region].permute(1, 0)


def grid_size(features: list[torch.Tensor]) -> tuple[int, int]:
    """The grid the energies are taken on: twice the size of the last (finest) feature map."""
    h, w = features[-1].shape[-2:]
    return h * UP_SCALE, w * UP_SCALE


def binary(mask: torch.Tensor) -> torch.Tensor:
    """A MASK ([H, W] or [1, H, W], 0-1) as ``[1, 1, H, W]`` float 0/1: its region, the pixels above 0.5."""
    plane = mask.reshape(-1, *mask.shape[-2:])[0]
    return (plane > 0.5).float()[None, None]


# ----------------------------------------------------------------------------- move and resize

@dataclass(frozen=True)
class MoveMasks:
    """``process_move``'s masks on the grid (bool ``[h, w]``; ``target`` on the grid resized by
    ``resize``) and the object's mask at the image's size (``image``, float ``[1, 1, H, W]``)."""
    image: torch.Tensor
    original: torch.Tensor       # mask_org: the object where it is
    target: torch.Tensor         # mask_tar: the object on the resized grid
    current: torch.Tensor        # mask_cur: where the object goes
    other: torch.Tensor          # mask_other: neither
    non_overlap: torch.Tensor    # mask_non_overlap: the old place the object leaves
    reference: torch.Tensor | None   # mask_x0_ref on the grid: what the old place should look like (None: other)
    resize: float
    has_other: bool = True           # which regions hold cells (read once, when the masks are made)
    has_non_overlap: bool = True
    has_reference: bool = True


def code_shift(width: int, height: int, box_centre: tuple[float, float], dx: float, dy: float,
               scale: float) -> tuple[float, float]:
    """The code's offset for a move of the region's centre by ``(dx, dy)`` with a resize by ``scale``
    about that centre (the pack's request, ``guidance/spatial.py``). The code resizes about the
    picture's centre and scales its offset too (a point ``p`` goes to ``(p - c) * s + c + s * d``,
    ``c`` the picture's centre); this is the ``d`` that takes the region's centre where the pack's
    request puts it. ``(dx, dy)`` itself at scale 1."""
    (bx, by), (cx, cy) = box_centre, (width / 2, height / 2)
    return (bx + dx - cx) / scale - bx + cx, (by + dy - cy) / scale - by + cy


def move_masks(mask: torch.Tensor, dx: float, dy: float, resize: float, grid: tuple[int, int],
               reference: torch.Tensor | None = None) -> MoveMasks:
    """``process_move``: the object's mask (a MASK at the image's size) on the ``grid``, moved by the
    code's offset ``(dx, dy)`` (image pixels, ``code_shift``) and resized by ``resize`` about the
    picture's centre; ``reference`` (optional MASK): the code's ``mask_ref``, the region whose mean
    feature the old place should take (default: everything the object does not cover)."""
    image = binary(mask)
    height, width = image.shape[-2:]
    gh, gw = grid
    sy, sx = height / gh, width / gw   # the code's `scale` (8 * SIZES[2] / up_scale = 4 on SD1.5)
    original = resized(image, (gh, gw)) > 0.5
    target = resized(image, (int(gh * resize), int(gw * resize))) > 0.5
    current = torch.roll(target, (int(dy // sy * resize), int(dx // sx * resize)), (-2, -1))
    pad_y, pad_x = abs(target.shape[-2] - gh) // 2, abs(target.shape[-1] - gw) // 2
    if resize > 1:
        before = current.sum()
        current = current[:, :, pad_y:pad_y + gh, pad_x:pad_x + gw]
        if bool(current.sum() != before):   # node time: the masks are made once per run
            raise RegionError("the resized region leaves the picture")
    else:
        placed = torch.zeros(1, 1, gh, gw, dtype=torch.bool, device=current.device)
        placed[:, :, pad_y:pad_y + current.shape[-2], pad_x:pad_x + current.shape[-1]] = current
        current = placed
    original, target, current = original[0, 0], target[0, 0], current[0, 0]
    other = ~(current | original)
    non_overlap = original & ~(current & original)
    ref = None if reference is None else (resized(binary(reference), (gh, gw)) > 0.5)[0, 0]
    return MoveMasks(image, original, target, current, other, non_overlap, ref, resize, bool(other.any()),
                     bool(non_overlap.any()), bool((other if ref is None else ref).any()))


def moved_start(x: torch.Tensor, mask: torch.Tensor, dx: float, dy: float, resize: float) -> torch.Tensor:
    """``run_move``'s start: the inverted latent ``x`` ([B, C, h, w]) with the object's latent pasted
    where it goes: the latent and the object's mask (image size) resized by ``resize``, rolled by
    the code's offset ``(dx, dy)`` in latent cells (truncated, as the code's ``int``), cropped or
    padded about the centre, then the object's cells replaced."""
    h, w = x.shape[-2:]
    height, width = mask.shape[-2:]
    size = (int(h * resize), int(w * resize))
    region = (resized(binary(mask), size) > 0).to(x)
    moved = resized(x, size)
    shift = (int(dy / (height / h) * resize), int(dx / (width / w) * resize))
    region, moved = torch.roll(region, shift, (-2, -1)), torch.roll(moved, shift, (-2, -1))
    pad_y, pad_x = abs(size[0] - h) // 2, abs(size[1] - w) // 2
    if resize > 1:
        before = region.sum()
        region = region[:, :, pad_y:pad_y + h, pad_x:pad_x + w]
        moved = moved[:, :, pad_y:pad_y + h, pad_x:pad_x + w]
        if bool(region.sum() != before):
            raise RegionError("the resized region leaves the picture")
    elif resize < 1:
        placed = torch.zeros(1, 1, h, w, dtype=x.dtype, device=x.device)
        placed[:, :, pad_y:pad_y + size[0], pad_x:pad_x + size[1]] = region
        region = (placed > 0.5).to(x)
        canvas = torch.zeros_like(x)
        canvas[:, :, pad_y:pad_y + size[0], pad_x:pad_x + size[1]] = moved
        moved = canvas
    return x * (1 - region) + moved * region


def move_energies(cur: list[torch.Tensor], ref: list[torch.Tensor], masks: MoveMasks, w_edit: float,
                  w_content: float, w_contrast: float, w_inpaint: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``guidance_move``'s energies (edit, content) of the features ``cur`` (the latent being edited,
    each ``[1, C, h, w]``) against ``ref`` (the inversion's latent at the same step), float32."""
    grid = grid_size(ref)
    ref_size = (int(ref[-1].shape[-2] * masks.resize * UP_SCALE), int(ref[-1].shape[-1] * masks.resize * UP_SCALE))
    up_cur = [resized(c.float(), grid) for c in cur]
    up_org = [resized(r.float(), grid) for r in ref]
    up_tar = [resized(r.float(), ref_size) for r in ref]
    zero = up_cur[0].sum() * 0
    edit = zero
    for f, weight in enumerate(FEATURE_WEIGHTS[:len(cur)]):
        sim = cosine(vectors(up_cur[f], masks.current), vectors(up_tar[f], masks.target))
        edit = edit + w_edit / (1 + 4 * sim.mean()) * weight
    content = zero
    reference = masks.other if masks.reference is None else masks.reference
    for f, weight in enumerate(FEATURE_WEIGHTS[:len(cur)]):
        if masks.has_other:
            other = cosine(up_org[f], up_cur[f])[0][masks.other].mean()
            content = content + w_content / (1 + 4 * other) * weight
    for f, weight in enumerate(FEATURE_WEIGHTS[:len(cur)]):
        if not masks.has_non_overlap:
            continue
        cur_no, org_no = vectors(up_cur[f], masks.non_overlap), vectors(up_org[f], masks.non_overlap)
        content = content + w_contrast * ((cosine(cur_no, org_no) + 1) / 2).mean() * weight
        if masks.has_reference:
            mean_cur = cur_no.mean(0, keepdim=True)
            mean_ref = vectors(up_org[f], reference).mean(0, keepdim=True)
            content = content + w_inpaint / (1 + 4 * ((cosine(mean_cur, mean_ref) + 1) / 2).mean())
    return edit, content


def move_edit_region(masks: MoveMasks, latent_hw: tuple[int, int]) -> torch.Tensor:
    """Where the edit energy's gradient guides (``mask_edit1``: the moved region at the latent's
    size, nearest, above 0); the content energy's guides the rest. ``[1, 1, h, w]`` float."""
    return (resized(masks.current[None, None].float(), latent_hw) > 0).float()


def move_noise_region(masks: MoveMasks, latent_hw: tuple[int, int]) -> torch.Tensor:
    """Where DiffEditor's regional SDE adds noise on a move: the object's old and new places at the
    latent's size. ``[1, 1, h, w]`` float."""
    old = resized(masks.image, masks.current.shape) > 0.5
    both = ((masks.current[None, None].float() + old.float()) > 0.5).float()
    return (resized(both, latent_hw) > 0.5).float()


# ----------------------------------------------------------------------------- drag

@dataclass(frozen=True)
class DragMasks:
    """``process_drag``'s masks on the grid: per pair the 3x3 patches at the handle (``handles``) and
    at the target (``targets``), the cells outside the editable region (``other``), and the editable
    region at the image's size (``image``, float ``[1, 1, H, W]``); ``cells``: each pair's (handle,
    target) patch centres on the grid (row, column)."""
    image: torch.Tensor
    handles: tuple[torch.Tensor, ...]
    targets: tuple[torch.Tensor, ...]
    other: torch.Tensor
    cells: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    lefts: tuple[torch.Tensor | None, ...] = ()   # per pair: the handle's cells the target's patch leaves (None: none)
    has_other: bool = True


def _cell(v: float, step: float, size: int) -> int:
    return int(min(max(v // step, 1), size - 2))


def drag_masks(mask: torch.Tensor, pairs: list, grid: tuple[int, int]) -> DragMasks:
    """``process_drag``: ``pairs`` of (handle, target) points in image pixels, ``mask`` the region that
    may change (a MASK at the image's size), on the ``grid``. (The code clips a point's column with
    the grid's height; here with its width: the same on a square picture.)"""
    image = binary(mask)
    height, width = image.shape[-2:]
    gh, gw = grid
    sy, sx = height / gh, width / gw
    other = (resized(image, (gh, gw)) < 0.5)[0, 0]
    handles, targets, cells = [], [], []
    for (hx, hy), (tx, ty) in pairs:
        hc = (_cell(hy, sy, gh), _cell(hx, sx, gw))
        tc = (_cell(ty, sy, gh), _cell(tx, sx, gw))
        for (r, c), out in ((hc, handles), (tc, targets)):
            patch = torch.zeros(gh, gw, dtype=torch.bool, device=mask.device)
            patch[r - 1:r + 2, c - 1:c + 2] = True
            out.append(patch)
        cells.append((hc, tc))
    lefts = []
    for handle, target in zip(handles, targets):
        left = handle & ~(handle & target)
        lefts.append(left if bool(left.any()) else None)
    return DragMasks(image, tuple(handles), tuple(targets), other, tuple(cells), tuple(lefts), bool(other.any()))


def dragged_start(x: torch.Tensor, masks: DragMasks) -> torch.Tensor:
    """``process_drag``'s start: for each pair in turn, the latent's 3x3 cells at the target (its grid
    cell halved) take those at the handle."""
    x = x.clone()
    for (hr, hc), (tr, tc) in masks.cells:
        hr, hc, tr, tc = hr // UP_SCALE, hc // UP_SCALE, tr // UP_SCALE, tc // UP_SCALE
        # the handle's cells read before writing (the code copies in place, which is undefined where they overlap)
        x[:, :, tr - 1:tr + 2, tc - 1:tc + 2] = x[:, :, hr - 1:hr + 2, hc - 1:hc + 2].clone()
    return x


def drag_energies(cur: list[torch.Tensor], ref: list[torch.Tensor], masks: DragMasks, w_edit: float,
                  w_content: float, w_inpaint: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``guidance_drag``'s energies (edit, consistency), float32."""
    grid = grid_size(ref)
    up_cur = [resized(c.float(), grid) for c in cur]
    up_ref = [resized(r.float(), grid) for r in ref]
    edit = up_cur[0].sum() * 0
    for f in range(len(cur)):
        for handle, target, left in zip(masks.handles, masks.targets, masks.lefts):
            sim = (cosine(vectors(up_cur[f], target), vectors(up_ref[f], handle)) + 1) / 2
            edit = edit + w_edit / (1 + 4 * sim.mean())
            if left is not None:
                sim_left = (cosine(vectors(up_cur[f], left), vectors(up_ref[f], left)) + 1) / 2
                edit = edit + w_inpaint * sim_left.mean()
    content = edit * 0
    for f in range(len(cur)):
        if masks.has_other:
            other = ((cosine(up_ref[f], up_cur[f]) + 1) / 2)[0][masks.other].mean()
            content = content + w_content / (1 + 4 * other)
    return edit / len(cur) / len(masks.handles), content / len(cur)


def drag_region(masks: DragMasks, latent_hw: tuple[int, int]) -> torch.Tensor:
    """The editable region at the latent's size (nearest, above 0): where the edit energy's gradient
    guides and DiffEditor's regional SDE adds noise. ``[1, 1, h, w]`` float."""
    return (resized(masks.image, latent_hw) > 0).float()


def guidance(grad_edit: torch.Tensor, grad_content: torch.Tensor, region: torch.Tensor, factor: float) -> torch.Tensor:
    """The guidance added to the predicted noise: the edit energy's gradient inside ``region``, the
    content energy's outside, times the mode's ``factor`` (``GUIDANCE_FACTOR``)."""
    region = region.to(grad_edit)
    return grad_edit * factor * region + grad_content * factor * (1 - region)
