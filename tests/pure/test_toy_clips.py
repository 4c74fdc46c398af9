"""Toy clips (issue 82): world 2's scenes moving along straight paths, their edits, the bundled
animated PNG, and the clip judge's consistency metrics, without the host."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from workshop.toyworld import clips as C
from workshop.toyworld import scenes as S

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("frames", [8, 16])
def test_clip_cases_move_inside_and_apart_and_keep_the_still_edits(frames):
    cases = C.clip_edit_cases(8, seed=0, frames=frames)
    stills = S.edit_cases(8, seed=0)
    for cc, still in zip(cases, stills):
        assert (cc.kind, cc.index, cc.source_caption, cc.target_caption) == \
            (still.kind, still.index, still.source_caption, still.target_caption)
        assert C.valid(cc.clip) and cc.frames == frames
        for (vx, vy) in cc.clip.velocity:
            assert C.SPEED_RANGE[0] <= math.hypot(vx, vy) <= C.SPEED_RANGE[1]
        for f, fc in enumerate(cc.frame_cases()):
            for o0, o, (vx, vy) in zip(cc.clip.start.objects, fc.source.objects, cc.clip.velocity):
                assert (o.cx, o.cy) == pytest.approx((o0.cx + f * vx, o0.cy + f * vy))   # moving by the path
                assert S.inside(o)
            a, b = fc.source.objects
            assert S.boxes_apart(a, b)
            assert fc.target.caption == cc.target_caption
            for i in fc.kept:   # the kept object is where the source's is, in every frame
                assert fc.target.objects[fc.target_index_of(i)] == fc.source.objects[i]


def test_sample_clip_asset_is_the_exact_eight_frame_render():
    from PIL import Image, ImageSequence

    assert C.valid(C.SAMPLE_CLIP) and C.SAMPLE_CLIP.frames == 8
    assert C.SAMPLE_CLIP.caption == "a red circle and a blue square on a green background"
    with Image.open(REPO / "assets" / C.CLIP_ASSET) as im:
        assert im.format == "PNG" and im.n_frames == 8
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    expected = C.to_uint8(C.render_clip(C.SAMPLE_CLIP.scenes())[0])
    assert len(frames) == 8 and all((a == b).all() for a, b in zip(frames, expected))
    assert not (frames[0] == frames[-1]).all()   # it moves


def _recoloured(scene: S.Scene, index: int | None) -> S.Scene:
    """``scene`` with object ``index`` (None: the background) in a colour it does not use."""
    used = {scene.background} | {o.colour for o in scene.objects}
    other = next(c for c in S.COLOURS if c not in used)
    return S.Scene(other, scene.objects) if index is None else scene.with_object(index, colour=other)


def test_clip_judge_reads_the_exact_clip_consistent_and_a_one_frame_recolour_not():
    """Constructed clips (256 px, 4 frames), one per edit kind: the exact target clip scores every
    frame right, consistent, no flicker; the same clip with one frame's edited object (background)
    recoloured, or for a drop the dropped object back in one frame, scores inconsistent."""
    from workshop.toyworld import clip_judge as J

    for cc in C.clip_edit_cases(4, seed=0, frames=4):
        frames = cc.frame_cases()
        exact = [fc.target for fc in frames]
        m = J.clip_metrics(cc, C.render_clip(exact, 256)[0])
        assert (m["success"], m["all_frames"], m["kept"], m["consistent"], m["flicker"]) == (1.0, 1.0, 1.0, 1.0, 0.0), \
            (cc.kind, m)
        if cc.kind in ("colour", "shape"):
            assert m["size_spread"] < 0.03
        bad = list(exact)
        bad[2] = frames[2].source if cc.kind == "drop" else _recoloured(exact[2], cc.index)
        m = J.clip_metrics(cc, C.render_clip(bad, 256)[0])
        assert m["consistent"] == 0.0 and m["all_frames"] == 0.0 and m["success"] == 0.75, (cc.kind, m)
        assert (m["flicker"] > 1.0) == (cc.kind == "background")   # flicker is the background's alone
    # the source clip itself, read as the reconstruction: consistent, and as an edit: wrong in every frame yet consistent
    cc = C.clip_edit_cases(1, seed=0, frames=4)[0]
    src = C.render_clip(cc.clip.scenes(), 256)[0]
    assert J.clip_metrics(cc, src, edit=False)["all_frames"] == 1.0
    m = J.clip_metrics(cc, src)
    assert m["success"] == 0.0 and m["consistent"] == 1.0


def test_flicker_counts_frame_to_frame_change_in_levels():
    import torch

    from workshop.toyworld import clip_judge as J

    frames = torch.zeros(3, 8, 8, 3)
    frames[1] += 2 / 255   # up 2 levels, then back down: 2 levels a pair
    assert J.flicker(frames, torch.ones(8, 8, dtype=torch.bool)) == pytest.approx(2.0)
    assert J.flicker(frames[:1], torch.ones(8, 8, dtype=torch.bool)) == 0.0
