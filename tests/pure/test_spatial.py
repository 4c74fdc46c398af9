"""The spatial edits' shared requests and checks (``guidance/spatial.py``): a region moved and scaled,
point pairs from text or masks, and the refusals every spatial node shares."""
import pytest
import torch

from invertedit.guidance.spatial import (Box, check_move, check_points, moved_mask, parse_points, points_from_masks,
                                         region_box)
from invertedit.refusals import NodeInputError


def square(h=64, w=64, x0=10, y0=20, size=8):
    m = torch.zeros(h, w)
    m[y0:y0 + size, x0:x0 + size] = 1
    return m


def test_region_box_and_moved_box():
    box = region_box(square())
    assert box == Box(10, 20, 18, 28)
    assert box.moved(5, -4, 2.0) == Box(11, 12, 27, 28)
    assert region_box(torch.zeros(8, 8)) is None


@pytest.mark.parametrize("dx,dy,scale", [(12, 0, 1.0), (0, -6, 1.0), (7, 9, 1.0), (0, 0, 2.0), (4, 4, 0.5)])
def test_moved_mask_lands_on_the_moved_box(dx, dy, scale):
    m = square()
    out = moved_mask(m, dx, dy, scale)
    assert out.shape == m.shape and out.dtype == m.dtype
    assert region_box(out) == region_box(m).moved(dx, dy, scale)
    assert abs(float(out.sum()) - float(m.sum()) * scale * scale) <= 0.02 * float(m.sum()) * scale * scale + 1
    batched = moved_mask(torch.stack([m, m]), dx, dy, scale)
    assert torch.equal(batched[1], out)


def test_check_move_refusals():
    m = square()
    assert check_move("N", m, 10, 0, 1.0) == Box(20, 20, 28, 28)
    with pytest.raises(NodeInputError, match="N: input 'scale' is 0"):
        check_move("N", m, 0, 0, 0.0)
    with pytest.raises(NodeInputError, match="input 'scale' is -1"):
        check_move("N", m, 0, 0, -1.0)
    with pytest.raises(NodeInputError, match="input 'mask' marks no region"):
        check_move("N", torch.zeros(64, 64), 0, 0, 1.0)
    with pytest.raises(NodeInputError, match="off the 64x64 picture; with scale 1 give dx from -10 to 46"):
        check_move("N", m, 50, 0, 1.0)
    with pytest.raises(NodeInputError, match="give a smaller scale"):
        check_move("N", m, 0, 0, 9.0)
    with pytest.raises(NodeInputError, match="input 'dx' is nan"):
        check_move("N", m, float("nan"), 0, 1.0)


def test_points_text():
    assert parse_points("N", "120,200 -> 160,200; (3.5, 4)->(5,6)\n") == [((120, 200), (160, 200)), ((3.5, 4), (5, 6))]
    with pytest.raises(NodeInputError, match="N: input 'points' has '1,2 3,4', which is not a point pair"):
        parse_points("N", "1,2 3,4")
    with pytest.raises(NodeInputError, match="input 'points' is empty"):
        parse_points("N", " ; ")
    check_points("N", [((0, 0), (63, 63))], 64, 64)
    with pytest.raises(NodeInputError, match=r"the target point \(64, 10\) outside the 64x64 picture"):
        check_points("N", [((1, 1), (64, 10))], 64, 64)
    with pytest.raises(NodeInputError, match=r"the handle point \(-1, 10\)"):
        check_points("N", [((-1, 10), (1, 1))], 64, 64)


def test_points_from_masks():
    (handle, target), = points_from_masks("N", square(x0=10, y0=20, size=4), square(x0=30, y0=40, size=4))
    assert handle == (11.5, 21.5) and target == (31.5, 41.5)
    with pytest.raises(NodeInputError, match="input 'target_mask' marks no region"):
        points_from_masks("N", square(), torch.zeros(64, 64))
