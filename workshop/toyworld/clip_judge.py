"""The toy clip judge (issue 82): world 2's exact judge (``scenes_judge.judge``) read frame by
frame, the still benchmark's metrics averaged over the frames, and the clip's consistency.

Per clip edit (``clips.ClipEditCase``) and an output clip ``[F, H, W, 3]`` in 0..1:

- ``success``    mean over the frames of the still benchmark's edit success
                 (``edited_right`` on frame f's edit case: the read object nearest
                 frame f's target object has the target colour and shape; a background edit, the
                 read background; a drop, no read object of the dropped colour in its box).
- ``all_frames`` 1 where the edit succeeds in every frame.
- ``kept``       mean over the frames of "every kept object found by its colour with its colour,
                 shape, centre within 3 px and size within 10% of frame f's" (as toyworld2).
- ``bg``         mean over the frames of the PSNR outside every object of the frame's source and
                 target scenes, against the exact target frame (dB; as toyworld2's "bg PSNR vs
                 GT"; identical frames' inf left out of the mean).
- ``consistent`` 1 where the edited thing reads the same in every frame (``edited_reading``):
                 for a colour or shape edit the (colour, shape) of the read object nearest the
                 edited object's path position with its centre inside that object's box ("gone"
                 where there is none); for a background edit the read background colour; for a
                 drop, "gone" or the (colour, shape) of a read object centred in the dropped
                 object's box. Consistent = one reading over all F frames (right or wrong: a clip
                 edited wrongly the same way in every frame is consistent, a clip whose object
                 is recoloured in one frame only is not).
- ``per_frame``  the per-frame lists of ``success``, ``kept`` and ``bg`` (the view benchmark's per-view figures).
- ``size_spread`` colour and shape edits only, where the edited object is read in every frame:
                 (largest - smallest) / mean of its read half-extent over the frames (the world's
                 objects keep their size; 0 for the exact clip, up to the judge's pixel rounding).
- ``flicker``    background flicker: the mean absolute frame-to-frame change, in 8-bit levels
                 (0..255), of the pixels that are background in every frame of the source and
                 the target clips (outside every object of every frame, the objects' masks grown
                 by ``FLICKER_DILATE`` canonical px, so that the VAE's ringing at the moving edges
                 is left out), averaged over the F-1 consecutive pairs and the three channels. The
                 exact source and target clips are flat there: their flicker is 0, so this is the
                 flicker an edit adds against the source clip (the "minus the source clip's" of
                 issue 82 is minus 0). The benchmark's VAE round trip of the source clip is its
                 floor.
"""
from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

from . import scenes as S
from .scenes_judge import Reading, judge

FLICKER_DILATE = 8   # canonical px (one latent cell of the 512 px world) grown around every object


def edited_right(r: Reading, case: S.EditCase, edit: bool = True) -> bool:
    """Edit success, the still benchmark's and the clip benchmark's (``workshop.benchmarks.toyworld2`` reads it from
    here): the edited object (or background) as the row intends, the target's for an edit row, the source's for the
    reconstruction row."""
    intended = case.target if edit else case.source
    if case.kind == "background":
        return r.background == intended.background
    if case.kind == "drop" and edit:
        gone = case.source.objects[case.index]
        x0, y0, x1, y1 = gone.box()
        return r.background == intended.background and not any(
            o.colour == gone.colour and x0 <= o.cx <= x1 and y0 <= o.cy <= y1 for o in r.objects)
    obj = intended.objects[case.index]
    near = r.nearest(obj)
    return near is not None and near.colour == obj.colour and near.shape == obj.shape


def kept_right(r: Reading, case: S.EditCase) -> bool:
    """Every object the edit must keep found by its colour with its colour, shape and structure."""
    return all((f := r.find(o.colour)) is not None and f.matches(o)
               for o in (case.source.objects[i] for i in case.kept))


def edited_reading(r: Reading, case: S.EditCase):
    """What one frame's reading says of the edited thing (see the module's ``consistent``);
    and the read object (None for a background edit or where it is gone)."""
    if case.kind == "background":
        return r.background, None
    obj = case.source.objects[case.index]
    x0, y0, x1, y1 = obj.box()
    inside = [o for o in r.objects if x0 <= o.cx <= x1 and y0 <= o.cy <= y1]
    if not inside:
        return "gone", None
    near = min(inside, key=lambda o: (o.cx - obj.cx) ** 2 + (o.cy - obj.cy) ** 2)
    return (near.colour, near.shape), near


def background_region(scenes: list[S.Scene], res: int, dilate: float = FLICKER_DILATE) -> torch.Tensor:
    """``[res, res]`` bool: outside every object of every scene (masks grown by ``dilate`` canonical px)."""
    union = torch.zeros(res, res, dtype=torch.bool)
    for sc in scenes:
        union |= S.render(sc, res)[1].any(0)
    grow = round(dilate * res / S.SIZE)
    if grow > 0:
        union = F.max_pool2d(union.float()[None, None], 2 * grow + 1, 1, grow)[0, 0] > 0
    return ~union


def flicker(images: torch.Tensor, region: torch.Tensor) -> float:
    """Mean absolute frame-to-frame change over ``region`` in 8-bit levels (see the module)."""
    if images.shape[0] < 2 or not bool(region.any()):
        return 0.0
    d = (images[1:].float() - images[:-1].float()).abs()[:, region]   # [F-1, n, 3]
    return float(d.mean()) * 255.0


def finite_mean(vals) -> float:
    vals = [v for v in vals if v is not None and not math.isinf(v) and not math.isnan(v)]
    return statistics.fmean(vals) if vals else math.inf


def clip_metrics(cc, images: torch.Tensor, edit: bool = True) -> dict:
    """The metrics of an output clip ``images`` ``[F, H, W, 3]`` for the clip edit ``cc``
    (``edit=False``: judged against the source clip, as a reconstruction)."""
    images = images.float().cpu()
    frames = cc.frame_cases()
    if images.shape[0] != len(frames):
        raise ValueError(f"the clip has {images.shape[0]} frames, its edit case {len(frames)}")
    res = images.shape[1]
    success, kept, bg, reads, sizes = [], [], [], [], []
    for img, fc in zip(images, frames):
        r = judge(img)
        success.append(float(edited_right(r, fc, edit)))
        kept.append(float(kept_right(r, fc)))
        tgt_img, tgt_masks = S.render(fc.target if edit else fc.source, res)
        src_masks = S.render(fc.source, res)[1]
        outside = ~(src_masks.any(0) | tgt_masks.any(0))
        bg.append(S.psnr(img, tgt_img, outside))
        reading, obj = edited_reading(r, fc)
        reads.append(reading)
        sizes.append(None if obj is None else obj.size)
    size_spread = None
    if cc.kind in ("colour", "shape") and all(s is not None for s in sizes):
        size_spread = (max(sizes) - min(sizes)) / statistics.fmean(sizes)
    region = background_region([sc for fc in frames for sc in (fc.source, fc.target)], res)
    return {"success": statistics.fmean(success), "all_frames": float(all(success)), "kept": statistics.fmean(kept),
            "bg": finite_mean(bg),
            "consistent": float(len(set(reads)) == 1), "readings": [str(x) for x in reads],
            "size_spread": size_spread, "flicker": flicker(images, region),
            "per_frame": {"success": success, "kept": kept, "bg": bg}}
