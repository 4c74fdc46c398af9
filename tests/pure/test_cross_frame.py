"""The clip layouts of the attention layer: the pair's source rows (``source_index``) and the
cross-frame anchors (``attention/cross_frame.py``)."""
from __future__ import annotations

import pytest
import torch

from invertedit.attention.cross_frame import anchor_rows, frame_anchors, parse_frames
from invertedit.attention.policy import source_index


def old_source_index(chunks, rows, kinds, extra=()):
    """The index before clips (rows 2 or 1), as it was written."""
    rows_of = [r for c, kind in enumerate(chunks) for r in
               ((c * rows, c * rows) if kind in kinds else (c * rows, c * rows + 1))[:rows]]
    return rows_of + list(extra)


@pytest.mark.parametrize("chunks", [(0,), (1,), (0, 1), (1, 0)])
@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("kinds", [(0,), (0, 1)])
def test_a_single_image_pair_keeps_its_index(chunks, rows, kinds):
    extra = (1,) if rows == 2 else ()
    assert source_index(chunks, rows, torch.device("cpu"), kinds, extra).tolist() == \
        old_source_index(chunks, rows, kinds, extra)


def test_a_clip_pair_target_row_f_plus_frame_takes_source_row_frame():
    # F = 3, chunks (cond, uncond): rows 0-2 source, 3-5 target of each chunk
    index = source_index((0, 1), 6, torch.device("cpu"), (0,)).tolist()
    assert index == [0, 1, 2, 0, 1, 2] + [6, 7, 8, 9, 10, 11]
    index = source_index((0, 1), 6, torch.device("cpu"), (0, 1)).tolist()
    assert index == [0, 1, 2, 0, 1, 2, 6, 7, 8, 6, 7, 8]


def test_anchors_of_each_rule():
    assert frame_anchors("first and previous", 4) == ((0, 0), (0, 0), (1, 0), (2, 0))
    assert frame_anchors("first", 3) == ((0,), (0,), (0,))
    assert frame_anchors("first, previous and self", 3) == ((0, 0, 0), (0, 0, 1), (1, 0, 2))
    assert frame_anchors("middle", 5) == ((2,),) * 5 and frame_anchors("middle", 4) == ((1,),) * 4
    assert frame_anchors("listed frames", 4, (0, -1)) == ((0, 3),) * 4
    assert frame_anchors("first", 3, (2,)) == ((0, 2), (0, 2), (0, 2))


def test_anchor_rows_stay_in_their_chunk_and_branch():
    anchors = frame_anchors("first and previous", 3)
    rows = anchor_rows(anchors, 3, 2, 6)   # a pair (2F = 6 rows) in two chunks
    assert rows == [0, 0, 0, 0, 1, 0, 3, 3, 3, 3, 4, 3, 6, 6, 6, 6, 7, 6, 9, 9, 9, 9, 10, 9]
    assert anchor_rows(anchors, 3, 1, 3) == [0, 0, 0, 0, 1, 0]   # a single clip at cfg 1


@pytest.mark.parametrize("rule,extra,message", [
    ("first", (4,), "frame 4 is out of range for a clip of 4 frames"),
    ("first", (-5,), "frame -5 is out of range"),
    ("listed frames", (), "needs frames listed"),
    ("every frame", (), "is not one of"),
])
def test_anchors_refused(rule, extra, message):
    with pytest.raises(ValueError, match=message):
        frame_anchors(rule, 4, extra)


def test_parse_frames():
    assert parse_frames("0, 4 -1") == (0, 4, -1) and parse_frames("") == ()
    with pytest.raises(ValueError, match="'x' is not a frame number"):
        parse_frames("0, x")
