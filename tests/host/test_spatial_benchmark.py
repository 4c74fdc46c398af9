"""The spatial benchmark on toy world 2 (issue 85, ``python -m workshop.benchmarks.toyworld2_spatial``): its
cases ask what the shared spatial request can say, their exact answers read right and the unedited source
wrong, and one case per kind runs end to end through the stock and baseline rows with finite figures."""
from __future__ import annotations

import argparse
import math

import pytest

from invertedit.guidance import spatial as SP
from workshop.benchmarks import toyworld2_spatial as B
from workshop.toyworld import scenes as S


def test_cases_are_fixed_and_their_requests_pass_the_shared_checks():
    cases = B.spatial_cases(8)
    assert [c.kind for c in cases] == list(B.KINDS) * 2 and [c.index for c in cases] == [0] * 4 + [1] * 4
    assert [(c.dx, c.dy, c.scale, c.points) for c in cases] == [
        (c.dx, c.dy, c.scale, c.points) for c in B.spatial_cases(8)]
    for c in cases:
        mask = c.mask()
        assert mask.shape == (1, S.SIZE, S.SIZE)
        if c.kind in ("move", "resize"):
            box = SP.check_move(B.NODE, mask, c.dx, c.dy, c.scale)
            x0, y0, x1, y1 = c.box   # the moved mask's box is the answer's, up to the mask's rim
            assert abs(box.centre[0] - (x0 + x1) / 2) < 1.5 and abs(box.centre[1] - (y0 + y1) / 2) < 1.5
        if c.kind == "drag":
            pairs = SP.parse_points(B.NODE, c.points)
            SP.check_points(B.NODE, pairs, S.SIZE, S.SIZE)
            box = B.target_box(c, mask)
            assert all(abs(a - b) <= 3.5 for a, b in zip((box.x0, box.y0, box.x1, box.y1), c.box))


def test_exact_answers_read_right_and_the_unedited_source_wrong():
    for c in B.spatial_cases(8):
        answer = c.render_target()
        m = B.case_metrics(c, answer[0], answer)
        assert m["success"] == 1.0 and m["kept"] == 1.0 and math.isinf(m["bg"]), (c.kind, m)
        assert m["hole"] is None or math.isinf(m["hole"])
        assert c.kind == "remove" or (m["err"] < 1.0 and abs(m["ratio"] - 1) < 0.02)
        wrong = B.case_metrics(c, S.render(c.source)[0], answer)
        assert wrong["success"] == 0.0 and wrong["kept"] == 1.0, (c.kind, wrong)
        if c.kind == "move":   # the object read where it was: the offset away
            assert wrong["err"] == pytest.approx(math.hypot(c.dx, c.dy), abs=1.0)


def test_one_case_per_kind_through_the_stock_and_baseline_rows(host, monkeypatch):
    """4 cases (one per kind) at 4 DDIM steps: the VAE ceiling and the cut and paste succeed, stock sampling
    (the unedited source) does not move anything, the SDEdit baseline gives finite figures and half stock's
    UNet calls or fewer; a node's refusal is a failed case, named under the table, not a crash."""
    def refuses(ctx):
        raise host.pack.refusals.NodeInputError("Some Move", "input 'scale' is too large here.")

    monkeypatch.setattr(B, "method_rows", lambda: [("A refusing row", ("move",), refuses)])
    args = argparse.Namespace(cases=4, steps=4, cfg=5.0, rows="Cut and paste,refusing", seed=0, shard=(0, 1),
                              save=None)
    res = B.run_cases(host, args)
    assert [c["kind"] for c in res["cases"]] == list(B.KINDS) and not res["skipped"]
    sm = B.summary(res)
    assert sm[B.VAE_ROW]["success"] == 1.0 and sm[B.VAE_ROW]["bg"] > 30
    assert sm[B.STOCK]["by_kind"]["move"] == [0.0] and sm[B.STOCK]["calls"] == 2 * args.steps
    paste = next(n for n in sm if n.startswith("Cut and paste, ring-mean"))
    sdedit = next(n for n in sm if n.startswith("Cut and paste + SDEdit"))
    assert sm[paste]["success"] == 1.0 and sm[paste]["calls"] == 0
    s = sm[sdedit]
    assert all(math.isfinite(v) for v in [s["bg"], s["s"], s["calls"], s["x_s"], s["x_calls"]] + s["hole"])
    assert all(math.isfinite(v) for v in s["err"] + s["ratio"] if v is not None)
    assert 0 < s["x_calls"] <= 0.5
    assert sm["A refusing row"]["success"] == 0.0 and sm["A refusing row"]["refused"] == [0]
    text = B.table(res)
    assert "| Cut and paste + SDEdit" in text and "4 of 4 cases" in text
    assert "- A refusing row: refused 1 case(s)" in text and "too large here" in text


def test_runs_of_other_rows_merge_on_the_same_cases_in_the_benchmarks_order():
    def run(shard, rows, kinds_of):
        return {"cases_total": 4, "seed": 0, "steps": 4, "cfg": 5.0, "shard": shard, "seconds": 1.0, "threads": 1,
                "rows": [[r, list(B.KINDS)] for r in rows], "skipped": {},
                "cases": [{"i": i, "kind": k, "vae_metrics": {}, "rows": {r: {"s": 1.0} for r in rows}}
                          for i, k in kinds_of]}
    later = B.rows(5.0)[2][0]
    merged = B.spatial_merge([run("0/1", [B.STOCK, later], [(0, "move"), (1, "resize")]),
                              run("1/2", [B.STOCK, B.rows(5.0)[1][0]], [(1, "resize"), (3, "remove")])])
    assert [r[0] for r in merged["rows"]] == [B.STOCK, B.rows(5.0)[1][0], later]
    assert [c["i"] for c in merged["cases"]] == [0, 1, 3] and len(merged["cases"][1]["rows"]) == 3
