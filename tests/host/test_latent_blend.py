"""Latent Blend on the host: outside a hard mask the target is the source bit for bit at every step."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

SOURCE = "a red circle on a blue background"
TARGET = "a red square on a blue background"


def pair(host, tiny, family="sd1", steps=10):
    model, clip, _ = tiny(family)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, SOURCE),
                       steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    m, cond, pair_lat = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=TARGET, mode="replace", reweight="", cross_replace=0.8, self_replace=0.4,
                             local_blend=False)
    return model, clip, inv, m, cond, pair_lat


def hard_mask(size=64):
    mask = torch.zeros(1, size, size)
    mask[:, 16:48, 8:40] = 1
    return mask


def sample(host, clip, model, cond, latent, steps=10):
    return call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=steps, cfg=5.0,
                sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=encode(host, clip, ""),
                latent_image=latent, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def recorded(model):
    seen = []

    def record(args):
        seen.append(args["input"].clone())
        return args["denoised"]

    model.set_model_sampler_post_cfg_function(record)
    return seen


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
@pytest.mark.parametrize("with_direct", [False, True])
def test_outside_a_hard_mask_the_source_is_kept_bit_for_bit_at_every_step(host, tiny, family, with_direct):
    model, clip, inv, m, cond, pair_lat = pair(host, tiny, family)
    blended, shown = call(host, "InvertEditLatentBlend", model=m, latent=pair_lat, mask=hard_mask(), start=0.0, end=1.0)
    if with_direct:   # wired after the blend: the correction still comes first
        blended = call(host, "InvertEditApplyInversion", model=blended,
                       inversion=call(host, "InvertEditDirectInversion", inversion=inv)[0])[0]
    seen = recorded(blended)
    out = sample(host, clip, blended, cond, pair_lat)
    outside = shown[0, ::8, ::8] == 0
    assert shown.shape == (1, 64, 64) and outside.sum() > 0 and (~outside).sum() > 0
    for x in seen + [out]:
        assert torch.equal(x[1][:, outside], x[0][:, outside])
    assert not torch.equal(out[1][:, ~outside], out[0][:, ~outside])
    if with_direct:   # the source row is the exact reconstruction
        src = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0
        assert rel_err(out[:1], src) < 1e-5


def test_a_late_start_keeps_the_source_to_float_precision_from_the_first_blended_step(host, tiny):
    model, clip, inv, m, cond, pair_lat = pair(host, tiny)
    blended, shown = call(host, "InvertEditLatentBlend", model=m, latent=pair_lat, mask=hard_mask(), start=0.3, end=0.8)
    seen = recorded(blended)
    sample(host, clip, blended, cond, pair_lat)
    outside = shown[0, ::8, ::8] == 0
    gaps = [float((x[1][:, outside] - x[0][:, outside]).abs().max()) for x in seen]
    assert max(gaps[:3]) > 1e-3                       # before the window the rows differ
    assert max(gaps[4:9]) < 1e-4                      # steps after the first blended one: together


def test_soft_masks_any_size_and_refusals(host, tiny):
    model, clip, inv, m, cond, pair_lat = pair(host, tiny)
    soft = torch.linspace(0, 1, 37 * 23).reshape(1, 37, 23)
    _, shown = call(host, "InvertEditLatentBlend", model=m, latent=pair_lat, mask=soft, start=0.0, end=1.0)
    assert shown.shape == (1, 64, 64) and 0 < float(shown.mean()) < 1
    with pytest.raises(ValueError, match="Latent Blend: input 'latent' has a batch of 1"):
        call(host, "InvertEditLatentBlend", model=m, latent={"samples": pair_lat["samples"][:1]}, mask=soft, start=0.0, end=1.0)
    with pytest.raises(ValueError, match=r"Latent Blend: start \(0.5\) must be before end \(0.5\)"):
        call(host, "InvertEditLatentBlend", model=m, latent=pair_lat, mask=soft, start=0.5, end=0.5)
