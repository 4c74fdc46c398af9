"""Changed Region's math (``invertedit/techniques/instruction_lock/region.py``): where an unlocked instruction edit
changed the picture."""
import torch

from invertedit.techniques.instruction_lock.region import change_map, changed_cells


def test_a_redrawn_box_is_found_and_grown():
    g = torch.Generator().manual_seed(0)
    before = torch.randn(16, 12, 20, generator=g)
    after = before.clone()
    after[:, 4:8, 6:12] += torch.randn(16, 4, 6, generator=g) * 2
    cells = changed_cells(change_map(before, after), 0.3, 0)
    assert cells[4:8, 6:12].all()                                 # what changed is in
    assert not cells[:2].any() and not cells[:, :4].any() and not cells[10:].any()   # far from it, out
    grown = changed_cells(change_map(before, after), 0.3, 1)
    assert torch.equal(grown, torch.nn.functional.max_pool2d(cells[None, None].float(), 3, 1, 1)[0, 0] > 0)


def test_a_small_change_everywhere_is_not_the_region():
    """A picture moved a little everywhere (every cell's latent a little off) and one object redrawn: the object's
    cells are the region, not the rest."""
    g = torch.Generator().manual_seed(1)
    before = torch.randn(16, 12, 20, generator=g)
    after = before + 0.05 * torch.randn(16, 12, 20, generator=g)
    after[:, 2:5, 3:7] += 3.0
    cells = changed_cells(change_map(before, after), 0.3, 0)
    assert cells[2:5, 3:7].all() and int(cells.sum()) <= (3 + 2) * (4 + 2)


def test_nothing_changed_is_no_region():
    x = torch.randn(16, 8, 8)
    assert not changed_cells(change_map(x, x.clone()), 0.3, 2).any()
