"""DiffEdit Mask on the host: a binary mask from the prompts' disagreement, seeded."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_mask_shapes_and_seed(host, tiny, family):
    model, clip, _ = tiny(family)
    lat = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    src, tgt = encode(host, clip, "a red circle on a blue background"), encode(host, clip, "a red square on a blue background")
    run = lambda seed, s=src: call(host, "InvertEditDiffEditMask", model=model, latent=lat, source=s, target=tgt,
                                   strength=0.5, samples=4, threshold=0.3, seed=seed)   # 0.9x the mean: some pixels
    mask, soft = run(0)
    assert mask.shape == soft.shape == (1, 64, 64)
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0 < float(mask.mean()) < 1
    assert float(soft.min()) >= 0.0 and 1 / 3 <= float(soft.max()) <= 1.0   # the maximum is at least the mean
    assert torch.equal(run(0)[1], soft) and not torch.equal(run(1)[1], soft)
    same, _ = run(0, s=tgt)   # identical prompts: no disagreement anywhere
    assert float(same.sum()) == 0.0
