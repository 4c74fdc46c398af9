"""Plug-and-Play on the host: where and when features and self-attention maps are injected."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

TARGET = "a red square on a blue background"


def setup(host, tiny, family, source="", target=TARGET, features=0.8, attention=0.5):
    model, clip, _ = tiny(family)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, source),
                       steps=10, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    m, pair, pair_lat = call(host, "InvertEditPlugAndPlay", model=model, clip=clip, latent=lat, source_prompt=source,
                             target_prompt=target, feature_injection=features, self_attention_injection=attention)
    return model, clip, m, pair, pair_lat


def run(host, clip, model, pair, pair_lat):
    return call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=10, cfg=5.0,
                sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=encode(host, clip, ""),
                latent_image=pair_lat, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_features_enter_the_target_in_the_window_only(host, tiny, family):
    model, clip, m, pair, pair_lat = setup(host, tiny, family)
    node = host.pack.hostkit.steps
    start = host.pack.techniques.plug_and_play.injection.decoder_injection_block(model.model.diffusion_model.num_res_blocks[-1] + 1)
    seen = []

    def after(h, hsp, options):   # runs after the pack's patch: sees what enters the block
        if options["block"] == ("output", start + 1):
            step, steps = node.sampling_step(options)
            seen.append((step, steps, torch.equal(h[1::2], h[0::2])))
        return h, hsp

    m.set_model_output_block_patch(after)
    out = run(host, clip, m, pair, pair_lat)
    assert seen and all(same == (step < 0.8 * steps) for step, steps, same in seen), seen
    keys = sorted(m.model_options["transformer_options"]["patches_replace"]["attn1"])
    assert keys and all(b == "output" and n >= start for b, n in keys)     # decoder self-attention only
    plain = run(host, clip, model, pair, pair_lat)
    assert rel_err(out[:1], plain[:1]) < 1e-6 and rel_err(out[1:], plain[1:]) > 1e-4   # the target alone changes


def test_identical_prompts_give_identical_branches(host, tiny):
    model, clip, m, pair, pair_lat = setup(host, tiny, "sd1", source=TARGET, target=TARGET, features=1.0, attention=1.0)
    out = run(host, clip, m, pair, pair_lat)
    assert rel_err(out[1:], out[:1]) < 1e-5


def test_refuses_to_drop_existing_attention_patches(host, tiny):
    model, clip, m, pair, pair_lat = setup(host, tiny, "sd1")
    with pytest.raises(ValueError, match="Plug-and-Play: the input MODEL already has attention replace patches"):
        call(host, "InvertEditPlugAndPlay", model=m, clip=clip, latent={"samples": torch.zeros(1, 4, 8, 8)},
             source_prompt="", target_prompt=TARGET, feature_injection=0.8, self_attention_injection=0.5)
