import torch

from invertedit.techniques.attention_maps.store import MapRecorder, local_blend_mask, normalise, word_maps


def test_recorder_lays_maps_on_the_grid_and_averages_layers():
    rec = MapRecorder((16, 16), side=8)
    # a 16x16 layer whose token 2 is attended only at the top-left quarter
    p = torch.zeros(4, 256, 5)
    p[..., 0] = 1.0
    grid = torch.zeros(16, 16)
    grid[:8, :8] = 1
    p[:, :, 2] = grid.flatten()
    p[:, :, 0] = 1 - grid.flatten()
    rec.add(p)
    # an 8x8 layer with the same layout
    q = torch.zeros(4, 64, 5)
    g8 = torch.zeros(8, 8)
    g8[:4, :4] = 1
    q[:, :, 2], q[:, :, 0] = g8.flatten(), 1 - g8.flatten()
    rec.add(q)
    avg = rec.average()
    assert avg.shape == (5, 8, 8) and rec.count == 2
    assert torch.allclose(avg[2][:4, :4], torch.ones(4, 4)) and float(avg[2][4:, 4:].abs().max()) < 1e-6


def test_word_maps_mask_and_normalise():
    maps = torch.zeros(6, 8, 8)
    maps[3, 2:5, 2:5] = 0.5
    maps[4, 2:5, 2:5] = 0.5   # a two-token word
    w = word_maps(maps, [[3, 4], [1]])
    assert torch.allclose(w[0, 3, 3], torch.tensor(1.0)) and float(w[1].sum()) == 0
    mask = local_blend_mask(w[:1])
    assert mask[1:6, 1:6].sum() == 25 and mask.sum() == 25      # the 3x3 pool widens the 3x3 blob by one
    own = local_blend_mask(w[:1], pool=1)                       # no pool: the blob itself
    assert own[2:5, 2:5].sum() == 9 and own.sum() == 9
    assert float(normalise(w[:1]).max()) == 1.0
