"""RAVE on the host (``invertedit/techniques/rave/``): the node's MODEL sampled by the stock
KSamplerAdvanced on a tiny SD1 clip. Grids of one frame are stock sampling, whatever the shuffles
(the wrapper's plumbing: rows, conditioning, chunks, the order back); grids of 2 x 2 draw the
frames as one picture, the same for the same seed."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode

STEPS, CFG = 3, 7.5


@pytest.fixture(scope="module")
def kit(host, tiny):
    model, clip, _ = tiny("sd1")
    source = encode(host, clip, "a red circle")
    clip_latent = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent={"samples": clip_latent}, positive=source,
                       steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return host, model, clip, inv, lat


def edit(kit, m):
    host, _, clip, inv, lat = kit
    m = call(host, "InvertEditApplyInversion", model=m, inversion=inv)[0]
    return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=CFG,
                sampler_name="ddim", scheduler="ddim_uniform", positive=encode(host, clip, "a red square"),
                negative=encode(host, clip, ""), latent_image=lat, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")[0]["samples"]


def rave(kit, grid_size, seed=0, shuffle=True):
    return call(kit[0], "InvertEditRAVE", model=kit[1], grid_size=grid_size, shuffle=shuffle, seed=seed)[0]


def test_grids_of_one_frame_are_stock_sampling(kit):
    stock = edit(kit, kit[1])
    assert torch.allclose(edit(kit, rave(kit, 1)), stock, rtol=1e-5, atol=1e-5 * float(stock.abs().max()))


def test_grids_of_four_frames_follow_the_seed(kit):
    first, again = edit(kit, rave(kit, 2, seed=1)), edit(kit, rave(kit, 2, seed=1))
    assert torch.equal(first, again) and bool(torch.isfinite(first).all())
    assert not torch.allclose(first, edit(kit, kit[1]))
    assert not torch.allclose(first, edit(kit, rave(kit, 2, seed=2)))
