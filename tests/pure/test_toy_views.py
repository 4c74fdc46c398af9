"""Toy view sets (issue 83): world 2's scenes seen from shifted cameras, their edits, the bundled
multi-frame PNG, and the view judge's agreement, without the host."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workshop.toyworld import scenes as S
from workshop.toyworld import views as V
from workshop.toyworld.clips import to_uint8

REPO = Path(__file__).resolve().parents[2]


def test_view_cases_move_by_parallax_inside_and_apart_and_keep_the_still_edits():
    cases = V.view_edit_cases(8, seed=0)
    for vc, still in zip(cases, S.edit_cases(8, seed=0)):
        assert (vc.kind, vc.index, vc.source_caption, vc.target_caption) == \
            (still.kind, still.index, still.source_caption, still.target_caption)
        vs = vc.views
        assert V.valid(vs) and vs.views == V.VIEWS and len(vc.view_cases()) == V.VIEWS
        assert all(V.DEPTH_RANGE[0] <= d <= V.DEPTH_RANGE[1] for d in vs.depth)
        xs = [x for x, _ in vs.cameras]
        steps = {round(b - a, 6) for a, b in zip(xs, xs[1:])}
        assert len(steps) == 1 and V.STEP_RANGE[0] <= abs(steps.pop()) <= V.STEP_RANGE[1]   # evenly spaced
        assert sum(xs) == pytest.approx(0.0) and all(abs(y) <= V.VERTICAL for _, y in vs.cameras)
        for (x, y), vcase in zip(vs.cameras, vc.view_cases()):
            for o0, o, d in zip(vs.centre.objects, vcase.source.objects, vs.depth):
                assert (o.cx, o.cy) == pytest.approx((o0.cx - x / d, o0.cy - y / d))   # parallax of its depth
                assert o.size == o0.size and S.inside(o)                              # size kept
            assert S.boxes_apart(*vcase.source.objects)
            assert vcase.target.caption == vc.target_caption
            for i in vcase.kept:   # the kept object is where the source's is, in every view
                assert vcase.target.objects[vcase.target_index_of(i)] == vcase.source.objects[i]
    # the near object moves more than the far one between the outer views
    vs = V.SAMPLE_VIEWS
    first, last = vs.scene(0), vs.scene(vs.views - 1)
    moved = [abs(a.cx - b.cx) for a, b in zip(first.objects, last.objects)]
    assert moved[0] == pytest.approx(2 * moved[1]) and moved[0] == pytest.approx(60.0)
    assert not V.valid(V.ViewSet(S.SAMPLE, (1.0, 2.0), V.cameras(4, 80.0)))   # the circle leaves the image


def test_sample_view_asset_is_the_exact_four_view_render():
    from PIL import Image, ImageSequence

    assert V.valid(V.SAMPLE_VIEWS) and V.SAMPLE_VIEWS.views == 4
    assert V.SAMPLE_VIEWS.caption == "a red circle and a blue square on a green background"
    with Image.open(REPO / "assets" / V.VIEWS_ASSET) as im:
        assert im.format == "PNG" and im.n_frames == 4
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    expected = to_uint8(V.render_views(V.SAMPLE_VIEWS)[0])
    assert len(frames) == 4 and all((a == b).all() for a, b in zip(frames, expected))
    assert not (frames[0] == frames[-1]).all()   # the views differ


def test_view_judge_agreement_per_view_and_a_one_view_recolour():
    """Constructed view sets (256 px), one per edit kind: the exact target views score every view right
    and agree; with view 2's edited object (background) recoloured, or for a drop the dropped object
    back in view 2, they disagree: 3 of 4 views agreeing, view 2's success 0 in the per-view list."""
    for vc in V.view_edit_cases(4, seed=0):
        cases = vc.view_cases()
        exact = [c.target for c in cases]
        m = V.view_metrics(vc, V.render_views(exact, 256)[0])
        assert (m["success"], m["kept"], m["agreement"], m["agreeing"]) == (1.0, 1.0, 1.0, 1.0), (vc.kind, m)
        assert m["per_frame"]["success"] == [1.0] * 4
        bad = list(exact)
        if vc.kind == "drop":
            bad[2] = cases[2].source
        else:
            used = {exact[2].background} | {o.colour for o in exact[2].objects}
            other = next(c for c in S.COLOURS if c not in used)
            bad[2] = S.Scene(other, exact[2].objects) if vc.index is None else exact[2].with_object(vc.index,
                                                                                                     colour=other)
        m = V.view_metrics(vc, V.render_views(bad, 256)[0])
        assert (m["agreement"], m["agreeing"]) == (0.0, 0.75), (vc.kind, m)
        assert m["per_frame"]["success"] == [1.0, 1.0, 0.0, 1.0], (vc.kind, m)
