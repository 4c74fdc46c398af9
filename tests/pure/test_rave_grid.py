"""RAVE's grid trick (``invertedit/techniques/rave/grid.py``), exactly: the tiling the authors'
``prepare_key_grid_latents`` makes (row-major), its inverse, and the shuffles as their
``shuffle_latents`` composes them."""
from __future__ import annotations

import torch

from invertedit.techniques.rave.grid import from_grids, grid_orders, to_grids


def test_grids_are_row_major_tiles_of_the_ordered_frames():
    x = torch.arange(8, dtype=torch.float32)[:, None, None, None].expand(8, 1, 2, 3).clone()   # frame f filled with f
    order = torch.tensor([5, 2, 7, 0, 1, 3, 6, 4])
    grids = to_grids(x, order, 2)
    assert grids.shape == (2, 1, 4, 6)
    assert grids[0, 0, :, ::3].tolist() == [[5, 2], [5, 2], [7, 0], [7, 0]]   # grid 0: 5 2 / 7 0
    assert grids[1, 0, ::2, ::3].tolist() == [[1, 3], [6, 4]]
    assert torch.equal(from_grids(grids, order, 2), x)


def test_a_grid_of_one_frame_is_the_frame():
    x = torch.randn(3, 4, 5, 6)
    assert torch.equal(to_grids(x, torch.tensor([2, 0, 1]), 1), x[[2, 0, 1]])
    assert torch.equal(from_grids(to_grids(x, torch.tensor([2, 0, 1]), 1), torch.tensor([2, 0, 1]), 1), x)


def test_the_shuffles_compose_as_the_authors_keep_their_order():
    torch.manual_seed(3)   # the authors: set_seed_lib(seed), then one randperm per step; indices = [indices[i] for i in rand_i]
    indices, theirs = list(range(9)), []
    for _ in range(4):
        rand_i = torch.randperm(9).tolist()
        indices = [indices[i] for i in rand_i]
        theirs.append(indices)
    assert grid_orders(3, 4, 9).tolist() == theirs
    assert grid_orders(3, 4, 9, shuffle=False).tolist() == [list(range(9))] * 4
