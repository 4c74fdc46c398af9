"""MasaCtrl on the host: layer counting, a start past the end equals plain sampling, and the
target rows read the source's keys and values inside a real run."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

SOURCE = "a red circle on a blue background"
TARGET = "a red square on a blue background"


def pair_run(host, tiny, family, start_step, start_layer, steps=10, record=None):
    model, clip, _ = tiny(family)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, SOURCE),
                       steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    m, pair, pair_lat = call(host, "InvertEditMasaCtrl", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=TARGET, start_step=start_step, start_layer=start_layer)
    if record is not None:
        replace = m.model_options["transformer_options"]["patches_replace"]["attn1"]
        for key, patch in list(replace.items()):
            def recorder(q, k, v, extra, patch=patch):
                out = patch(q, k, v, extra)
                record.append((extra, q, k, v, out))
                return out
            replace[key] = recorder
    out = call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=steps, cfg=5.0,
               sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=encode(host, clip, ""),
               latent_image=pair_lat, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]
    plain = call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=steps, cfg=5.0,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=encode(host, clip, ""),
                 latent_image=pair_lat, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]
    return model, out, plain


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_layers_are_counted_from_the_model(host, tiny, family):
    from comfy.ldm.modules.attention import BasicTransformerBlock

    model = tiny(family)[0]
    found = host.pack.hostkit.layout.self_attention_layers(model)
    layers = sum(isinstance(m, BasicTransformerBlock) for m in model.model.diffusion_model.modules())
    assert len(found) == layers and sorted(found.values()) == list(range(layers))
    assert list(found)[0][0] == "input" and list(found)[-1][0] == "output"


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_start_step_past_the_end_is_refused_at_the_run(host, tiny, family):
    """A start step the run never reaches would sample plain pictures without a word (issue 24)."""
    with pytest.raises(ValueError, match=r"MasaCtrl: input 'start_step' is 1000, but the run has \d+ steps, so "
                                         r"MasaCtrl would never act"):
        pair_run(host, tiny, family, start_step=1000, start_layer=0)


def test_target_reads_source_keys_and_values(host, tiny):
    calls = []
    _, out, plain = pair_run(host, tiny, "sd1", start_step=3, start_layer=2, record=calls)
    maps = host.pack.attention.maps
    steps, mutual = host.pack.hostkit.steps, host.pack.hostkit.layout
    seen = {True: 0, False: 0}
    for extra, q, k, v, o in calls:
        step, _ = steps.sampling_step(extra)
        layer = mutual.self_attention_layers(tiny("sd1")[0])[(extra["block"][0], extra["block"][1], extra.get("block_index", 0))]
        active = step >= 3 and layer >= 2
        h = extra["n_heads"]
        for c in range(len(extra["cond_or_uncond"])):
            s = 2 * c
            want = maps.attend(maps.attention_probs(q[s + 1:s + 2], k[s:s + 1] if active else k[s + 1:s + 2], h),
                               v[s:s + 1] if active else v[s + 1:s + 2])
            assert torch.allclose(o[s + 1:s + 2], want, atol=1e-4)
        seen[active] += 1
    assert seen[True] and seen[False]
    assert rel_err(out[1:], plain[1:]) > 1e-4 and rel_err(out[:1], plain[:1]) < 1e-6   # only the target changes


def test_refusals(host, tiny):
    model, clip, _ = tiny("sd1")
    lat = {"samples": torch.zeros(1, 4, 8, 8)}
    with pytest.raises(ValueError, match="MasaCtrl: start_layer is 11 but this UNet has 11 self-attention layers"):
        call(host, "InvertEditMasaCtrl", model=model, clip=clip, latent=lat, source_prompt=SOURCE, target_prompt=TARGET,
             start_step=4, start_layer=11)
    m = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
             target_prompt=TARGET, mode="replace", reweight="", cross_replace=0.8, self_replace=0.4)[0]
    with pytest.raises(ValueError, match="MasaCtrl: the input MODEL already has attention replace patches"):
        call(host, "InvertEditMasaCtrl", model=m, clip=clip, latent=lat, source_prompt=SOURCE, target_prompt=TARGET,
             start_step=4, start_layer=2)


def test_mask_guided_version(host, tiny):
    model, clip, _ = tiny("sd1")
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, SOURCE),
                       steps=6, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)

    def run(**masks):
        m, pair, pair_lat = call(host, "InvertEditMasaCtrl", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                                 target_prompt=TARGET, start_step=1, start_layer=2, **masks)
        return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=6, cfg=5.0,
                    sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=encode(host, clip, ""),
                    latent_image=pair_lat, start_at_step=0, end_at_step=10000,
                    return_with_leftover_noise="disable")[0]["samples"]

    plain = run()
    assert rel_err(run(source_mask=torch.ones(1, 64, 64)), plain) < 1e-6   # one region: the unmasked version
    half = torch.zeros(1, 64, 64)
    half[:, :, :32] = 1.0
    guided = run(source_mask=half, target_mask=half.flip(-1))
    assert rel_err(guided[1:], plain[1:]) > 1e-4 and rel_err(guided[:1], plain[:1]) < 1e-6
    with pytest.raises(ValueError, match="MasaCtrl: input 'target_mask' is connected without 'source_mask'"):
        run(target_mask=half)
