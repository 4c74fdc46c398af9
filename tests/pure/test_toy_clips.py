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
