"""TokenFlow on the host (``invertedit/techniques/tokenflow/``): the node's MODEL sampled by the stock
KSamplerAdvanced on a tiny SD1 clip. The whole run against the authors' code is
``test_tokenflow_parity.py``; here what holds whatever the reference: a clip of identical frames,
with the injections off, is the stock sampler's edit of that frame (the keyframes' extended
attention over copies of one frame is its own attention, and every token's nearest neighbour is
itself), and the keyframes follow the seed."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode

STEPS, CFG = 3, 7.5


@pytest.fixture(scope="module")
def kit(host, tiny):
    model, clip, _ = tiny("sd1")
    return host, model, clip, encode(host, clip, "a red circle"), encode(host, clip, "a red square"), encode(host, clip, "")


def invert(kit, latent):
    host, model, _, source, _, _ = kit
    return call(host, "InvertEditDDIMInvert", model=model, latent={"samples": latent}, positive=source, steps=STEPS,
                scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[:2]


def edit(kit, m, lat):
    host, _, _, _, target, negative = kit
    return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=CFG,
                sampler_name="ddim", scheduler="ddim_uniform", positive=target, negative=negative, latent_image=lat,
                start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def tokenflow(kit, inv, batch_size=2, attention=0.5, features=0.8, seed=1):
    host, model, _, source, _, _ = kit
    return call(host, "InvertEditTokenFlow", model=model, inversion=inv, source=source, batch_size=batch_size,
                self_attention_injection=attention, feature_injection=features, seed=seed)[0]


def test_a_still_clip_without_injection_is_the_stock_edit_of_its_frame(kit):
    host, model = kit[:2]
    frame = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0
    inv, lat = invert(kit, frame.repeat(4, 1, 1, 1))
    stock = edit(kit, call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0], lat)
    ours = edit(kit, tokenflow(kit, inv, attention=0.0, features=0.0), lat)
    assert float((ours - stock).abs().max()) <= 1e-4 * float(stock.abs().max())
    assert float((ours - ours[:1]).abs().max()) <= 1e-4 * float(stock.abs().max())   # every frame alike


def test_the_keyframes_follow_the_seed(kit):
    clip = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 5.0   # a shorter last batch
    inv, lat = invert(kit, clip)
    first, again = (edit(kit, tokenflow(kit, inv, seed=7), lat) for _ in range(2))
    assert torch.equal(first, again)
    draws = kit[0].pack.techniques.tokenflow.propagation.keyframe_draws
    assert not torch.equal(draws(7, STEPS, 3, 2), draws(9, STEPS, 3, 2))   # seed 7: frame 1 each step, 9: frame 0
    other = edit(kit, tokenflow(kit, inv, seed=9), lat)
    assert not torch.allclose(first, other)
    assert bool(torch.isfinite(first).all())
