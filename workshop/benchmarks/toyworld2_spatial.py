"""Spatial edits on toy world 2 (issue 85): move an object by an offset, resize it by a factor, drag its
box's corner, remove it; each case's exact answer rendered by the world, read by the exact judge.

    python -m workshop.benchmarks.toyworld2_spatial [--cases 32] [--steps 20] [--cfg 5] [--seed 0]
                                                    [--rows WORD,WORD] [--kinds move,drag] [--save DIR]
                                                    [--shard K/N] [--json out.json]
    python -m workshop.benchmarks.toyworld2_spatial --merge a.json b.json      (the table of shard files)

Cases (``spatial_cases``, fixed seed, kinds in turn, the edited object alternating): two-object scenes of
``scenes.random_scene``, and
- move     the object moved by (dx, dy) image pixels (48-128 px in a random direction, whole pixels), kept
           inside the picture's margin and ``scenes.GAP`` clear of the other object;
- resize   the object scaled about its centre by 0.7 or 1.4 (in turn), inside and clear of the other;
- drag     one corner of the object's box dragged by 24-64 px in x and in y (signs at random), the
           opposite corner fixed; the answer is the object drawn stretched to the new box
           (``scenes.render_in_box``: a circle becomes an ellipse);
- remove   the object removed, the background showing through (the answer is the scene without it).
A case is asked as a user's graph asks it, in the shared request of ``invertedit/guidance/spatial.py``:
the object's MASK (its exact mask grown by ``MASK_GROW`` px, so that its anti-aliased rim goes with it),
dx, dy and scale; for a drag the points text ``"x,y -> x,y"`` (the corner -> where it goes).

Read per case by ``scenes_judge.judge`` against the exact answer:
- success      the edited object found by its colour with its shape, its centre within ``POS_TOL`` (4) px and
               its size within ``SIZE_TOL`` (10%) of the answer's (a drag: the read box's width and height
               each), no second object of its colour (no copy left behind), the background colour right,
               and the other object kept; a removal: no object of the removed colour, none other than the
               kept one centred in the removed object's box, the background right, the other object kept;
- centre err   distance of the read centre from the answer's (px; moves, resizes, drags where found);
- size err     |read size / the answer's - 1| (a drag: the geometric mean of the width and height ratios), %;
- other kept   the other object by its colour: same colour, shape, centre within 3 px, size within 10%;
- bg PSNR      PSNR outside every object of the source and of the answer, against the answer (dB);
- hole PSNR    PSNR over the pixels the edited object leaves (its source mask less every object of the
               answer) against the answer (a 1.4x resize leaves none);
- s / case     seconds of the row's whole graph (its own inversion included; the source's VAE encoding
               and the final decoding, the same for all, not), and its UNet calls (forward calls of the
               diffusion model, each of any batch; in brackets the rows they ran), both also as ratios to the
               "stock sampling" row
               measured beside it on the same cases: DDIM inversion of the source (source caption, cfg 1)
               and the same number of steps of plain sampling back (cfg 1): what a spatial method that
               inverts and samples would cost if it did nothing else.

Rows: the VAE round trip of the exact answer (the ceiling), stock sampling (also the unedited source: it
fails every case by construction), cut and paste without and with SDEdit (the naive baseline, below), and a
row per method node, each on the kinds it does; a row whose node the pack lacks is listed under the table.

The naive baseline (``cut_and_paste``): the object's pixels cut by its mask (soft, as the mask is), the hole
filled with the mean colour of a ring 2-6 px outside the mask, the cut pixels resampled (bilinear) from the
mask's box into the target box (the box moved and scaled, or with its dragged corner moved) and pasted over;
then SDEdit through the host's stock nodes (VAE Encode, KSampler at denoise 0.5, seed 0, the same steps, cfg
``--cfg``, the empty negative) with the caption of the edited picture: the source's, for a removal the one
without the removed object (the source's would ask for the object back).
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from invertedit.guidance import spatial as SP
from workshop.benchmarks.dispatch_count import counted_model
from workshop.benchmarks.toyworld import SCHEDULER, finite_mean, fmt
from workshop.benchmarks.toyworld2 import pct, run_or_merge, shard_options
from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import Reading, judge

KINDS: tuple[str, ...] = ("move", "resize", "drag", "remove")
POS_TOL, SIZE_TOL = 4.0, 0.10            # the edited object's centre (px) and size (relative)
KEPT_POS_TOL, KEPT_SIZE_TOL = 3.0, 0.10  # the other object's, as the edit benchmark's
MASK_GROW = 2                            # the request's mask: the object's exact mask grown by this many px
MOVE_RANGE = (48.0, 128.0)               # offset length, px
RESIZE_FACTORS = (0.7, 1.4)
DRAG_RANGE = (24.0, 64.0)                # corner offset per axis, px
DENOISE = 0.5                            # the baseline's SDEdit strength
NODE = "toyworld2_spatial"               # the node name in the shared checks' refusals


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpatialCase:
    """One spatial edit with its exact answer. ``box`` is the edited object's box in the answer
    (x0, y0, x1, y1, canonical = image px; None for a removal); ``target`` the answer's scene (a drag's
    is the source's, its object drawn in ``box``)."""
    kind: str
    source: S.Scene
    index: int
    target: S.Scene
    box: tuple[float, float, float, float] | None
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    points: str = ""

    @property
    def obj(self) -> S.Obj:
        return self.source.objects[self.index]

    @property
    def other(self) -> S.Obj:
        return self.source.objects[1 - self.index]

    @property
    def caption(self) -> str:
        """The caption of the edited picture (the source's but for a removal)."""
        return self.target.caption

    def render_target(self, res: int = S.SIZE) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "drag":
            return S.render_in_box(self.source, self.index, self.box, res)
        return S.render(self.target, res)

    def mask(self) -> torch.Tensor:
        """The request's MASK ``[1, H, W]``: the object's exact mask grown by ``MASK_GROW`` px."""
        _, masks = S.render(self.source)
        return grow(masks[self.index], MASK_GROW).float()[None]


def grow(mask: torch.Tensor, px: int) -> torch.Tensor:
    """A bool ``[H, W]`` mask grown by ``px`` pixels (a square neighbourhood)."""
    if px <= 0:
        return mask.bool()
    return F.max_pool2d(mask.float()[None, None], 2 * px + 1, 1, px)[0, 0] > 0


def _rect_ok(box, other: S.Obj) -> bool:
    """``box`` inside the picture's margin and ``GAP`` clear of ``other``'s box (along x or y)."""
    x0, y0, x1, y1 = box
    if x0 < S.MARGIN or y0 < S.MARGIN or x1 > S.SIZE - S.MARGIN or y1 > S.SIZE - S.MARGIN:
        return False
    ox0, oy0, ox1, oy1 = other.box()
    return x0 >= ox1 + S.GAP or ox0 >= x1 + S.GAP or y0 >= oy1 + S.GAP or oy0 >= y1 + S.GAP


def _draw(kind: str, rng: random.Random, src: S.Scene, index: int, j: int) -> SpatialCase | None:
    """One try at a case of ``kind`` on ``src`` (None when the draw does not fit)."""
    o, other = src.objects[index], src.objects[1 - index]
    if kind == "move":
        length, angle = rng.uniform(*MOVE_RANGE), rng.uniform(0, 2 * math.pi)
        dx, dy = float(round(length * math.cos(angle))), float(round(length * math.sin(angle)))
        new = S.Obj(o.colour, o.shape, o.cx + dx, o.cy + dy, o.size)
        if not _rect_ok(new.box(), other):
            return None
        return SpatialCase(kind, src, index, src.with_object(index, cx=new.cx, cy=new.cy), new.box(), dx, dy)
    if kind == "resize":
        scale = RESIZE_FACTORS[j % len(RESIZE_FACTORS)]
        new = S.Obj(o.colour, o.shape, o.cx, o.cy, o.size * scale)
        if not _rect_ok(new.box(), other):
            return None
        return SpatialCase(kind, src, index, src.with_object(index, size=new.size), new.box(), scale=scale)
    if kind == "drag":
        x0, y0, x1, y1 = o.box()
        right, down = rng.random() < 0.5, rng.random() < 0.5       # the dragged corner
        ddx = rng.choice((-1, 1)) * float(round(rng.uniform(*DRAG_RANGE)))
        ddy = rng.choice((-1, 1)) * float(round(rng.uniform(*DRAG_RANGE)))
        hx, hy = (x1 if right else x0), (y1 if down else y0)
        box = (x0 + (0 if right else ddx), y0 + (0 if down else ddy), x1 + (ddx if right else 0),
               y1 + (ddy if down else 0))
        w, h = box[2] - box[0], box[3] - box[1]
        if min(w, h) < 0.6 * 2 * o.size or not _rect_ok(box, other):
            return None
        # the corner as a pixel the user clicks: the last pixel inside the box on the right / bottom
        px, py = (hx - 1 if right else hx), (hy - 1 if down else hy)
        points = f"{px:.0f},{py:.0f} -> {px + ddx:.0f},{py + ddy:.0f}"
        return SpatialCase(kind, src, index, src, box, ddx, ddy, points=points)
    if kind == "remove":
        return SpatialCase(kind, src, index, src.without(index), None)
    raise ValueError(f"unknown spatial edit kind {kind!r}; expected one of {KINDS}")


def spatial_cases(n: int = 32, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[SpatialCase]:
    """``n`` cases, kinds in turn, the edited object alternating, from a fixed seed."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        kind, j = kinds[i % len(kinds)], i // len(kinds)
        index = j % 2
        case = None
        while case is None:
            src = S.random_scene(rng)
            for _ in range(50):
                case = _draw(kind, rng, src, index, j)
                if case is not None:
                    break
        cases.append(case)
    return cases


# ---------------------------------------------------------------------------------------------
# The judge's reading of a spatial edit
# ---------------------------------------------------------------------------------------------

def _mask_box(mask: torch.Tensor, k: float) -> tuple[float, float, float, float]:
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    return float(cols[0]) / k, float(rows[0]) / k, (float(cols[-1]) + 1) / k, (float(rows[-1]) + 1) / k


def case_metrics(case: SpatialCase, image: torch.Tensor, answer: tuple[torch.Tensor, torch.Tensor] | None = None,
                 source_masks: torch.Tensor | None = None) -> dict:
    """The reading of one output ``image`` ``[H, W, 3]`` (canonical size) of ``case`` (see the module)."""
    tgt_img, tgt_masks = answer if answer is not None else case.render_target()
    src_masks = source_masks if source_masks is not None else S.render(case.source)[1]
    r: Reading = judge(image)
    k = image.shape[-3] / S.SIZE
    other = r.find(case.other.colour)
    kept = other is not None and other.matches(case.other, KEPT_POS_TOL, KEPT_SIZE_TOL)
    bg_right = r.background == case.source.background
    hole = src_masks[case.index] & ~tgt_masks.any(0)
    m = {"kept": float(kept), "bg": S.psnr(image, tgt_img, ~(src_masks.any(0) | tgt_masks.any(0))),
         "hole": S.psnr(image, tgt_img, hole) if int(hole.sum()) else None, "err": None, "ratio": None}
    same = [o for o in r.objects if o.colour == case.obj.colour]
    if case.kind == "remove":
        x0, y0, x1, y1 = case.obj.box()
        there = [o for o in r.objects if o is not other and x0 <= o.cx <= x1 and y0 <= o.cy <= y1]
        m["edit"] = float(not same and not there and bg_right)
    elif same:
        found = same[0]
        x0, y0, x1, y1 = case.box
        if case.kind == "drag":   # the read box's centre, width and height against the answer's box
            rx0, ry0, rx1, ry1 = _mask_box(found.mask, k)
            cx, cy = (rx0 + rx1) / 2, (ry0 + ry1) / 2
            ratios = ((rx1 - rx0) / (x1 - x0), (ry1 - ry0) / (y1 - y0))
        else:
            cx, cy = found.cx, found.cy
            ratios = (found.size / ((x1 - x0) / 2),)
        m["err"] = math.hypot(cx - (x0 + x1) / 2, cy - (y0 + y1) / 2)
        m["ratio"] = math.exp(statistics.fmean(math.log(max(q, 1e-6)) for q in ratios))
        m["edit"] = float(found.shape == case.obj.shape and m["err"] <= POS_TOL
                          and all(abs(q - 1) <= SIZE_TOL for q in ratios) and len(same) == 1 and bg_right)
    else:
        m["edit"] = 0.0
    m["success"] = float(m["edit"] and kept)
    return m


# ---------------------------------------------------------------------------------------------
# The naive baseline: cut and paste
# ---------------------------------------------------------------------------------------------

def target_box(case_or_request, mask: torch.Tensor) -> SP.Box | None:
    """Where the request puts the mask's box: moved and scaled (``spatial.check_move``), or its corner
    nearest the first point pair's handle moved to the target, the opposite corner fixed; None for a
    removal. Read from the request (mask, dx, dy, scale, points) alone, as a user's graph has it."""
    c = case_or_request
    if c.kind == "remove":
        return None
    if c.kind == "drag":
        (hx, hy), (tx, ty) = SP.parse_points(NODE, c.points)[0]
        box = SP.region_box(mask)
        right = abs(hx - box.x1) < abs(hx - box.x0)
        down = abs(hy - box.y1) < abs(hy - box.y0)
        ddx, ddy = tx - hx, ty - hy
        return SP.Box(box.x0 + (0 if right else ddx), box.y0 + (0 if down else ddy),
                      box.x1 + (ddx if right else 0), box.y1 + (ddy if down else 0))
    return SP.check_move(NODE, mask, c.dx, c.dy, c.scale)


def cut_and_paste(image: torch.Tensor, mask: torch.Tensor, box: SP.Box | None, ring: tuple[int, int] = (2, 6)):
    """The naive baseline's picture ``[H, W, 3]``: the masked pixels cut (soft, as the mask is), the hole
    filled with the mean colour of the ring ``ring`` px outside the mask, the cut pixels resampled from the
    mask's box into ``box`` and pasted (none for a removal)."""
    plane = mask[0] if mask.ndim == 3 else mask
    alpha = plane.float().clamp(0, 1)
    inside = plane > 0.5
    band = grow(inside, ring[1]) & ~grow(inside, ring[0])
    fill = image[band].mean(0)
    out = image * (1 - alpha[..., None]) + fill * alpha[..., None]
    if box is None:
        return out
    src = SP.region_box(mask)
    h, w = plane.shape
    # output pixel centre p reads the source pixel src.x0 + (p - box.x0) * src.w / box.w
    xs = src.x0 + (torch.arange(w, dtype=torch.float32) + 0.5 - box.x0) * (src.x1 - src.x0) / (box.x1 - box.x0)
    ys = src.y0 + (torch.arange(h, dtype=torch.float32) + 0.5 - box.y0) * (src.y1 - src.y0) / (box.y1 - box.y0)
    grid = torch.stack(torch.meshgrid(ys / h * 2 - 1, xs / w * 2 - 1, indexing="ij")[::-1], dim=-1)[None]
    stack = torch.cat([image.permute(2, 0, 1), alpha[None]])[None]
    moved = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    a = moved[3:].permute(1, 2, 0)
    return out * (1 - a) + moved[:3].permute(1, 2, 0) * a


# ---------------------------------------------------------------------------------------------
# Rows: (name, kinds, function(ctx) -> ("latent", samples) or ("image", [H, W, 3]))
# ---------------------------------------------------------------------------------------------

class Skip(Exception):
    """A row that cannot run (its node is not in the pack yet): the reason."""


def stock_sampling(ctx):
    """DDIM Invert (source caption, cfg 1, ``steps``) + KSampler (Advanced) back with it at cfg 1."""
    host = ctx["host"]
    _, lat, _ = call(host, "InvertEditDDIMInvert", model=ctx["model"], latent=ctx["src_latent"], positive=ctx["src"],
                     steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=0, cfg=1.0)
    return "latent", call(host, "KSamplerAdvanced", model=ctx["model"], add_noise="disable", noise_seed=0,
                          steps=ctx["steps"], cfg=1.0, sampler_name="ddim", scheduler=SCHEDULER, positive=ctx["src"],
                          negative=ctx["src"], latent_image=lat, start_at_step=0, end_at_step=10000,
                          return_with_leftover_noise="disable")[0]["samples"]


def paste_only(ctx):
    case, mask = ctx["case"], ctx["mask"]
    return "image", cut_and_paste(ctx["src_img"], mask, target_box(case, mask))


def paste_sdedit(ctx):
    host = ctx["host"]
    _, pasted = paste_only(ctx)
    lat = call(host, "VAEEncode", pixels=pasted[None], vae=ctx["vae"])[0]
    return "latent", call(host, "KSampler", model=ctx["model"], seed=0, steps=ctx["steps"], cfg=ctx["cfg"],
                          sampler_name="ddim", scheduler=SCHEDULER, positive=ctx["caption"], negative=ctx["empty"],
                          latent_image=lat, denoise=DENOISE)[0]["samples"]


REFUSED = {"success": 0.0, "edit": 0.0, "kept": None, "bg": None, "hole": None, "err": None, "ratio": None}
STOCK = "Stock sampling: DDIM inversion + plain sampling back (source caption, cfg 1; the unedited source)"
VAE_ROW = "(VAE round trip of the exact answer: the ceiling)"


def rows(cfg: float) -> list[tuple[str, tuple[str, ...], object]]:
    return [
        (STOCK, KINDS, stock_sampling),
        ("Cut and paste, ring-mean fill (no diffusion)", KINDS, paste_only),
        (f"Cut and paste + SDEdit (strength {DENOISE:g}, the picture's caption, cfg {cfg:g})", KINDS, paste_sdedit),
    ] + method_rows()


def node(ctx, class_type: str, label: str) -> str:
    """``class_type`` when the pack has it, else Skip naming the row."""
    if class_type not in ctx["host"].nodes.NODE_CLASS_MAPPINGS:
        raise Skip(f"{label}: no {class_type} node in the pack yet")
    return class_type


def ddim_invert(ctx, model, positive, start_at_step: int = 0) -> tuple:
    """Stock-like DDIM Invert of the source latent (cfg 1): (INVERSION, LATENT, SIGMAS)."""
    return call(ctx["host"], "InvertEditDDIMInvert", model=model, latent=ctx["src_latent"], positive=positive,
                steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=start_at_step, cfg=1.0)


def sample_guider(ctx, guider, sigmas, latent) -> torch.Tensor:
    """SamplerCustomAdvanced with DisableNoise and KSamplerSelect ddim: the LATENT samples."""
    host = ctx["host"]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas,
                latent_image=latent)[0]["samples"]


def dragon_diffusion(kind: str, settings: dict):
    """DragonDiffusion Move / Drag as their docstrings wire them: DDIM Invert (the caption, cfg 1) -> the node (the
    caption, the empty negative, the INVERSION; Move: the object's mask, dx, dy, scale; Drag: the editable region
    ``drag_region`` and the points) -> SamplerCustomAdvanced (ddim, DDIM Invert's SIGMAS, the node's LATENT)."""
    def run(ctx):
        from workshop.benchmarks.toyworld2_clips import call_with_defaults
        case = ctx["case"]
        label = f"DragonDiffusion {kind}"
        dn = node(ctx, f"InvertEditDragonDiffusion{kind}", label)
        inv, _, sigmas = ddim_invert(ctx, ctx["model"], ctx["src"])
        given = {"model": ctx["model"], "positive": ctx["src"], "negative": ctx["empty"], "inversion": inv, **settings}
        if kind == "Move":
            given.update(mask=ctx["mask"], dx=case.dx, dy=case.dy, scale=case.scale)
        else:
            given.update(mask=drag_region(ctx["mask"], case.points), points=case.points)
        guider, start = call_with_defaults(ctx["host"], dn, given)[:2]
        return "latent", sample_guider(ctx, guider, sigmas, start)
    return run


def self_guidance(settings: dict):
    """Self-Guidance as its docstring wires it: DDIM Invert (the caption, cfg 1) -> Self-Guidance (the caption,
    the object's words ("red circle"), dx, dy, scale, its mask) -> SamplerCustomAdvanced (ddim, the node's SIGMAS
    and LATENT)."""
    def run(ctx):
        from workshop.benchmarks.toyworld2_clips import call_with_defaults
        case, label = ctx["case"], "Self-Guidance"
        sg = node(ctx, "InvertEditSelfGuidance", label)
        inv, _, _ = ddim_invert(ctx, ctx["model"], ctx["src"])
        guider, lat, sigmas = call_with_defaults(ctx["host"], sg, {
            "model": ctx["model"], "clip": ctx["clip"], "prompt": case.source.caption, "negative": ctx["empty"],
            "inversion": inv, "word": f"{case.obj.colour} {case.obj.shape}", "dx": case.dx, "dy": case.dy,
            "scale": case.scale, "mask": ctx["mask"], **settings})
        return "latent", sample_guider(ctx, guider, sigmas, lat)
    return run


def drag_region(mask: torch.Tensor, points: str, margin: float = 16.0) -> torch.Tensor:
    """DragDiffusion's editable region, as a user draws it from the request (the toy workflow's box about the
    square and its surround): the box around the object's mask and the target points, ``margin`` px wider on
    every side (a MASK ``[1, H, W]``)."""
    box = SP.region_box(mask)
    pairs = SP.parse_points(NODE, points)
    xs = [box.x0 - margin, box.x1 + margin] + [t[0] + d for _, t in pairs for d in (-margin, margin)]
    ys = [box.y0 - margin, box.y1 + margin] + [t[1] + d for _, t in pairs for d in (-margin, margin)]
    h, w = mask.shape[-2:]
    out = torch.zeros(1, h, w)
    y0, y1 = max(0, int(min(ys))), min(h, math.ceil(max(ys)) + 1)
    x0, x1 = max(0, int(min(xs))), min(w, math.ceil(max(xs)) + 1)
    out[:, y0:y1, x0:x1] = 1.0
    return out


def drag_diffusion(lora: dict, settings: dict, strength: float = 0.7):
    """DragDiffusion as its docstring wires it: DragDiffusion LoRA (the caption) -> DDIM Invert with that model
    (start at (1 - strength) of the steps, the code's inversion strength 0.7) -> DragDiffusion (the points, the
    editable region ``drag_region``) -> KSamplerAdvanced (cfg 1, from the same start step) -> row 1."""
    def run(ctx):
        from workshop.benchmarks.toyworld2_clips import call_with_defaults
        host, case, label = ctx["host"], ctx["case"], "DragDiffusion"
        dd = node(ctx, "InvertEditDragDiffusion", label)
        model = ctx["model"]
        if lora is not None:
            model = call_with_defaults(host, node(ctx, "InvertEditDragDiffusionLoRA", label), {
                "model": model, "positive": ctx["src"], "latent": ctx["src_latent"], **lora})[0]
        start = round((1 - strength) * ctx["steps"])
        inv, _, _ = ddim_invert(ctx, model, ctx["src"], start)
        m, pair, _ = call_with_defaults(host, dd, {
            "model": model, "positive": ctx["src"], "inversion": inv, "points": case.points,
            "mask": drag_region(ctx["mask"], case.points), **settings})
        out = call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=ctx["steps"], cfg=1.0,
                   sampler_name="ddim", scheduler=SCHEDULER, positive=ctx["src"], negative=ctx["src"],
                   latent_image=pair, start_at_step=start, end_at_step=10000,
                   return_with_leftover_noise="disable")[0]["samples"]
        return "latent", out[1:]
    return run


def attentive_eraser(settings: dict):
    """Attentive Eraser as its docstring wires it: DDIM Invert (the empty prompt, cfg 1, the authors') ->
    Attentive Eraser (the empty prompt, the object's mask) -> SamplerCustomAdvanced (ddim, DDIM Invert's SIGMAS
    and LATENT)."""
    def run(ctx):
        from workshop.benchmarks.toyworld2_clips import call_with_defaults
        ae = node(ctx, "InvertEditAttentiveEraser", "Attentive Eraser")
        inv, lat, sigmas = ddim_invert(ctx, ctx["model"], ctx["empty"])
        guider = call_with_defaults(ctx["host"], ae, {"model": ctx["model"], "conditioning": ctx["empty"],
                                                      "inversion": inv, "mask": ctx["mask"], **settings})[0]
        return "latent", sample_guider(ctx, guider, sigmas, lat)
    return run


def method_rows() -> list[tuple[str, tuple[str, ...], object]]:
    """One row per method node of the pack, on the kinds it does, wired as its docstring says, at the settings
    of its toy workflow where that sets any (else the node's defaults, the authors')."""
    return [
        ("DragonDiffusion Move (DiffEditor variant, the code's defaults: cfg 4, energy 0.5, regional SDE 0.4)",
         ("move", "resize"), dragon_diffusion("Move", {})),
        ("Self-Guidance (the toy workflow's: v 3000, cfg 5, the object's colour and shape words)", ("move", "resize"),
         self_guidance({"guidance": 3000.0, "cfg": 5.0})),
        (("DragDiffusion (the toy workflow's: identity LoRA 20 steps, inversion 0.7, 80 latent steps, feature level 2, "
          "self-attention from layer 2 of 4)"), ("drag",),
         drag_diffusion({"steps": 20, "seed": 0}, {"feature_idx": 2, "start_layer": 2})),
        ("DragonDiffusion Drag (DiffEditor variant, the code's defaults; the editable region as DragDiffusion's)",
         ("drag",), dragon_diffusion("Drag", {})),
        ("Attentive Eraser (the toy workflow's: from self-attention layer 0 of 4; the empty prompt, removal scale 9)",
         ("remove",), attentive_eraser({"start_layer": 0})),
    ]


def select_rows(all_rows, words: str):
    wanted = [w.strip() for w in words.split(",") if w.strip()]
    return all_rows if not wanted else all_rows[:1] + [r for r in all_rows[1:] if any(w in r[0] for w in wanted)]


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

def decode(host, vae, samples) -> torch.Tensor:
    return call(host, "VAEDecode", vae=vae, samples={"samples": samples})[0][0]


def _image(host, vae, out) -> torch.Tensor:
    what, value = out
    return decode(host, vae, value) if what == "latent" else value


def save_strip(path: Path, images: list[torch.Tensor], labels: list[str], side: int = 128) -> None:
    """A row of thumbnails (source, answer, each row's output), each labelled, as a PNG."""
    from PIL import Image, ImageDraw

    thumbs = [F.interpolate(im.permute(2, 0, 1)[None].float().clamp(0, 1), size=(side, side), mode="area")[0]
              for im in images]
    strip = torch.cat(thumbs, dim=2).permute(1, 2, 0)
    picture = Image.fromarray((strip.numpy() * 255).round().astype("uint8"))
    draw = ImageDraw.Draw(picture)
    for k, label in enumerate(labels):
        draw.rectangle((k * side, 0, k * side + 6 * len(label) + 3, 11), fill="white")
        draw.text((k * side + 2, 0), label, fill="black")
    picture.save(path)


def run_cases(host, args) -> dict:
    """Per-case, per-row metrics of this shard, as ``--json`` writes them."""
    model, clip, vae = host.pack.demo.toy_model.load_toy_model(host.pack.demo.toy_model.WORLD_2)
    k, n = args.shard
    kinds = [w.strip() for w in (getattr(args, "kinds", "") or "").split(",") if w.strip()]
    cases = [(i, c) for i, c in list(enumerate(spatial_cases(args.cases, seed=args.seed)))[k::n]
             if not kinds or c.kind in kinds]
    chosen = select_rows(rows(args.cfg), args.rows)
    empty = encode(host, clip, "")
    refusal = host.pack.refusals.NodeInputError
    save = getattr(args, "save", None)
    if save:
        Path(save).mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    out_cases = []
    t0 = time.time()
    for done, (i, case) in enumerate(cases):
        src_img, src_masks = S.render(case.source)
        answer = case.render_target()
        ctx = {"host": host, "clip": clip, "vae": vae, "steps": args.steps, "cfg": args.cfg, "case": case,
               "src_img": src_img, "mask": case.mask(), "empty": empty,
               "src_latent": call(host, "VAEEncode", pixels=src_img[None], vae=vae)[0],
               "src": encode(host, clip, case.source.caption), "caption": encode(host, clip, case.caption)}
        vae_img = decode(host, vae, call(host, "VAEEncode", pixels=answer[0][None], vae=vae)[0]["samples"])
        record = {"i": i, "kind": case.kind, "vae_metrics": case_metrics(case, vae_img, answer, src_masks), "rows": {}}
        shown, labels = [src_img, answer[0]], ["source", "answer"]
        for name, kinds, fn in chosen:
            if case.kind not in kinds or name in skipped:
                continue
            m_counted, calls = counted_model(model)
            t = time.time()
            try:
                out = fn({**ctx, "model": m_counted})
            except Skip as e:
                skipped[name] = str(e)
                continue
            except refusal as e:   # the node refuses the request: the case fails, its figures are left out
                record["rows"][name] = {**REFUSED, "refused": str(e), "s": time.time() - t, "calls": len(calls),
                                        "unet_rows": sum(calls)}
                print(f"  case {i}: {name} refused: {e}", file=sys.stderr, flush=True)
                continue
            seconds = time.time() - t
            img = _image(host, vae, out)
            m = case_metrics(case, img, answer, src_masks)
            m.update(s=seconds, calls=len(calls), unet_rows=sum(calls))
            record["rows"][name] = m
            shown.append(img)
            labels.append(name.split(" (")[0].split(":")[0][:20])
        stock = record["rows"].get(STOCK)
        for m in record["rows"].values():   # the cost unit measured beside each row, case by case
            if stock is not None:
                m.update(stock_s=stock["s"], stock_calls=stock["calls"])
        if save:
            save_strip(Path(save) / f"case{i:03d}_{case.kind}.png", shown, labels)
        out_cases.append(record)
        print(f"  case {i} ({case.kind}) done: {done + 1}/{len(cases)} ({time.time() - t0:.0f}s)", file=sys.stderr,
              flush=True)
    return {"cases_total": args.cases, "seed": args.seed, "steps": args.steps, "cfg": args.cfg, "shard": f"{k}/{n}",
            "rows": [[name, list(kinds)] for name, kinds, _ in chosen if name not in skipped], "skipped": skipped,
            "cases": out_cases, "seconds": time.time() - t0, "threads": torch.get_num_threads()}


def _mean(vals, digits: int = 1) -> str:
    vals = [v for v in vals if v is not None]
    return f"{statistics.fmean(vals):.{digits}f}" if vals else "-"


def summary(res: dict) -> dict[str, dict]:
    """Per row: its metrics' means over the cases it ran, and its time and calls against stock's on the same cases."""
    cases = res["cases"]
    out = {}
    for name, kinds in [[VAE_ROW, list(KINDS)]] + res["rows"]:
        ran = [(c, c["vae_metrics"] if name == VAE_ROW else c["rows"].get(name)) for c in cases]
        ran = [(c, m) for c, m in ran if m is not None]
        if not ran:
            continue
        s = {"n": len(ran), "kinds": kinds, "success": statistics.fmean(m["success"] for _, m in ran),
             "by_kind": {k: [m["success"] for c, m in ran if c["kind"] == k] for k in KINDS},
             "err": [m["err"] for _, m in ran], "ratio": [m["ratio"] for _, m in ran],
             "kept": statistics.fmean([m["kept"] for _, m in ran if m["kept"] is not None] or [math.nan]),
             "bg": finite_mean([m["bg"] for _, m in ran if m["bg"] is not None]),
             "refused": [c["i"] for c, m in ran if "refused" in m],
             "hole": [m["hole"] for _, m in ran if m["hole"] is not None]}
        if name != VAE_ROW:
            both = [m for _, m in ran if "stock_s" in m]
            s["s"] = statistics.fmean(m["s"] for _, m in ran)
            s["calls"] = statistics.fmean(m["calls"] for _, m in ran)
            s["unet_rows"] = statistics.fmean(m["unet_rows"] for _, m in ran)
            if both:
                s["x_s"] = sum(m["s"] for m in both) / sum(m["stock_s"] for m in both)
                s["x_calls"] = sum(m["calls"] for m in both) / max(1, sum(m["stock_calls"] for m in both))
        out[name] = s
    return out


def table(res: dict) -> str:
    cases = res["cases"]
    kinds = [c["kind"] for c in cases]
    lines = [
        f"Toy world 2 spatial benchmark: {len(cases)} of {res['cases_total']} cases (seed {res['seed']}; shard "
        f"{res['shard']}; " + ", ".join(f"{k} {kinds.count(k)}" for k in KINDS)
        + f"), DDIM {res['steps']} steps ({SCHEDULER}), cfg {res['cfg']:g}, Toy World 2 Model; "
        f"{res['seconds']:.0f}s of running{' (summed over the runs)' if '+' in res['shard'] else ''} on "
        f"{res['threads']} thread(s). Success: the edited object's centre within {POS_TOL:g} px and size within "
        f"{100 * SIZE_TOL:.0f}%, its colour and shape, no copy left, the other object kept.",
        "",
        ("| row | success | move / resize / drag / remove | centre err (px) | size err (%) | other kept | bg PSNR | "
         "hole PSNR | s / case | UNet calls (rows) / case | vs stock (time, calls) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary(res).items():
        by_kind = " / ".join(pct(s["by_kind"][k]) if k in s["kinds"] else "-" for k in KINDS)
        hole = finite_mean(s["hole"]) if s["hole"] else None
        seconds = calls = cost = "-"
        if name != VAE_ROW:
            seconds, calls = f"{s['s']:.1f}", f"{s['calls']:.0f} ({s['unet_rows']:.0f})"
            cost = f"{s['x_s']:.2f}x, {s['x_calls']:.2f}x" if "x_s" in s else "-"
        size_err = _mean([None if q is None else 100 * abs(q - 1) for q in s["ratio"]], 0)
        lines.append(
            f"| {name} | {100 * s['success']:.0f}% | {by_kind} | {_mean(s['err'])} | {size_err} | "
            f"{100 * s['kept']:.0f}% | {fmt(s['bg'])} | {'-' if hole is None else fmt(hole)} | {seconds} | "
            f"{calls} | {cost} |")
    for name, s in summary(res).items():
        if s.get("refused"):
            first = next(c["rows"][name]["refused"] for c in cases if c["i"] == s["refused"][0])
            lines.append(f"- {name}: refused {len(s['refused'])} case(s) (counted as failures, left out of the other "
                         f"columns): {', '.join(map(str, s['refused']))}; e.g. \"{first}\"")
    for name, why in res.get("skipped", {}).items():
        lines.append(f"- Not run: {name}: {why}")
    return "\n".join(lines)


def spatial_merge(results: list[dict]) -> dict:
    """The table's input from several ``--json`` files: shards of the same rows, or runs of other rows on the
    same cases (each row's cost ratios against the stock row of its own run)."""
    first = results[0]
    for r in results[1:]:
        for key in ("seed", "steps", "cfg", "cases_total"):
            if r[key] != first[key]:
                raise SystemExit(f"--merge: the files differ in {key!r} ({r[key]!r} vs {first[key]!r})")
    names, cases = [], {}
    for r in results:
        names += [row for row in r["rows"] if row not in names]
        for c in r["cases"]:
            have = cases.setdefault(c["i"], {**c, "rows": {}})
            have["rows"].update(c["rows"])
    order = [name for name, _, _ in rows(first["cfg"])]   # the benchmark's own order, whichever file came first
    names.sort(key=lambda row: order.index(row[0]) if row[0] in order else len(order))
    shards = sorted({r["shard"] for r in results})
    return {**first, "rows": names, "cases": [cases[i] for i in sorted(cases)], "shard": " + ".join(shards),
            "seconds": sum(r["seconds"] for r in results),
            "skipped": {k: v for r in results for k, v in r.get("skipped", {}).items() if k not in
                        {n for n, _ in names}}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=32, help="cases in all, the four kinds in turn")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=5.0, help="guidance of the guided rows (SDEdit's, the methods')")
    p.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words "
                                              "(and the stock row, the cost unit)")
    p.add_argument("--kinds", default="", help="only the cases of these comma-separated kinds (" + ", ".join(KINDS)
                                               + "); --merge joins runs of other kinds or rows on the same cases")
    p.add_argument("--save", type=Path, help="save each case's strip here (source, answer, each row's output)")
    shard_options(p)
    args = p.parse_args(argv)
    if args.merge:
        import json
        print(table(spatial_merge([json.loads(f.read_text()) for f in args.merge])))
        return
    run_or_merge(args, run_cases, table, "toyworld2-spatial-")


if __name__ == "__main__":
    main()
