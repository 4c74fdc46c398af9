"""pix2pix-zero (Pix2Pix-Zero Invert, Edit Direction, Cross-Attention Guidance) through the host:
parity with diffusers' StableDiffusionPix2PixZeroPipeline on the same tiny SD1 weights (its
``invert`` with the regulariser, its ``__call__`` with cross-attention guidance), exact limits,
the UNet calls a step, the SD2-v and SDXL layouts, weights loaded under inference mode, and
chaining with Apply Inversion.

The reference is run as it is; the one thing the comparison works around is outside the math:
its ``__call__`` adds the edit direction to row 1 of its prompt batch, which is the conditional
row only under classifier-free guidance, so at guidance 1 it drops the direction (the edit is
the reconstruction). The parity test therefore runs at guidance 7.5, the reference's default.
Both runs start from our inverted latent, so the edit's comparison does not include the
inversion's own (separately measured) difference.
"""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

SRC = "a red circle on a blue background"
SOURCE = "a red circle on a blue background\na green circle on a yellow background\na white circle on a black background"
TARGET = SOURCE.replace("circle", "square")
SCHED = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
             clip_sample=False, set_alpha_to_one=True, steps_offset=1)   # the host's ddim_uniform


def latent(side: int, seed: int = 3) -> dict:
    return {"samples": torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(seed)) * 5}


def invert(host, model, pos, src, steps, **change):
    args = dict(model=model, latent=src, positive=pos, steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0,
                lambda_auto_corr=20.0, lambda_kl=20.0, reg_steps=5, auto_corr_rolls=5, seed=0)
    args.update(change)
    return call(host, "InvertEditPix2PixZeroInvert", **args)


def ddim(host, model, pos, src, steps):
    """A plain DDIM inversion: the guidance works on any; the tests of the guidance alone use this
    one (the regulariser diverges on the 8x8 latents they run at: test_bad_inputs)."""
    return call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=steps,
                scheduler="ddim_uniform", start_at_step=0, cfg=1.0)


def direction(host, clip, pos, source=SOURCE, target=TARGET):
    return call(host, "InvertEditEditDirection", conditioning=pos, source_sentences=source, target_sentences=target,
                clip=clip)[0]


def edit(host, model, pos, target, neg, lat, sigmas, amount=0.1, cfg=7.5, sampler="ddim"):
    guider, pair = call(host, "InvertEditCrossAttentionGuidance", model=model, positive=pos, target=target, negative=neg,
                        latent=lat, cfg=cfg, guidance_amount=amount)
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas,
                latent_image=pair)[0]["samples"]


def pair_conditioning(a: list, b: list) -> list:
    """The stock way to sample a source/target pair: one CONDITIONING of batch 2."""
    extra = {}
    if a[0][1].get("pooled_output") is not None:
        extra["pooled_output"] = torch.cat([a[0][1]["pooled_output"], b[0][1]["pooled_output"]])
    return [[torch.cat([a[0][0], b[0][0]]), extra]]


@pytest.fixture(scope="module")
def reference(request):
    """diffusers' pipeline on the tiny SD1 model's weights (its own UNet copy: the pipeline swaps
    the attention processors of the UNet it holds)."""
    pytest.importorskip("diffusers")
    from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionPix2PixZeroPipeline

    pipe = StableDiffusionPix2PixZeroPipeline(
        **request.getfixturevalue("sd1_pipeline_parts"), scheduler=DDIMScheduler(**SCHED),
        inverse_scheduler=DDIMInverseScheduler(**SCHED), feature_extractor=None, safety_checker=None,
        caption_generator=None, caption_processor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_inversion_matches_diffusers_invert_with_the_regulariser(host, tiny, reference):
    """32x32 latent: the auto-correlation pyramid has three levels (32, 16, 8); the seed drives
    the random shifts as the reference's generator does."""
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, SRC)
    src, steps = latent(32), 8
    inv, lat, _ = invert(host, model, pos, src, steps, seed=5)
    scale = model.model.latent_format.scale_factor
    with torch.no_grad():
        ref = reference.invert(SRC, image=src["samples"] * scale, num_inference_steps=steps,
                               generator=torch.Generator().manual_seed(5), output_type="latent").latents
    ours = inv.trajectory[0] / (1 + inv.sigmas[0] ** 2).sqrt()
    plain = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=steps,
                 scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]
    err, effect = rel_err(ours, ref), rel_err(inv.trajectory[0], plain.trajectory[0])
    print(f"\npix2pix-zero inversion vs diffusers' invert (sd1, {steps} steps, 32x32, defaults): {err:.1e}; "
          f"the regulariser moves the inverted latent by {effect:.2f} (relative) from DDIM's")
    assert err < 1e-5 and effect > 0.1
    assert inv.method == "ddim" and inv.settings["pix2pix_zero"]["lambda_auto_corr"] == 20.0


def test_edit_matches_diffusers_call_with_cross_attention_guidance(host, tiny, reference):
    model, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    steps = 5   # ddim_uniform gives diffusers' timesteps when the step count divides 1000
    _, lat, sigmas = invert(host, model, pos, latent(16), steps)
    target = direction(host, clip, pos)
    ours = edit(host, model, pos, target, neg, lat, sigmas)
    unguided = edit(host, model, pos, target, neg, lat, sigmas, amount=0.0)
    scale = model.model.latent_format.scale_factor
    start = lat["samples"] * scale / (1 + sigmas[0] ** 2).sqrt()
    with torch.no_grad():
        ref = reference(prompt=SRC, source_embeds=reference.get_embeds(SOURCE.split("\n")),
                        target_embeds=reference.get_embeds(TARGET.split("\n")), num_inference_steps=steps,
                        guidance_scale=7.5, latents=start, cross_attention_guidance_amount=0.1, output_type="latent",
                        height=128, width=128).images / scale
    err, effect = rel_err(ours[1:], ref), rel_err(ours[1:], unguided[1:])
    print(f"\npix2pix-zero edit vs diffusers' __call__ (sd1, {steps} steps, cfg 7.5, guidance 0.1, 16x16): {err:.1e}; "
          f"guidance moves the edit by {effect:.1e}")
    assert err < 1e-5 and effect > 1e-3


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_zero_guidance_is_unguided_sampling_with_three_unet_calls_a_step(host, tiny, family):
    model, clip, _ = tiny(family)
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    steps = 4
    _, lat, sigmas = ddim(host, model, pos, latent(8), steps)
    target = direction(host, clip, pos)
    stock = call(host, "CFGGuider", model=model, positive=pair_conditioning(pos, target), negative=neg, cfg=7.5)[0]
    plain = call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=stock,
                 sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas,
                 latent_image={"samples": lat["samples"].repeat(2, 1, 1, 1)})[0]["samples"]
    counted = model.clone()
    rows = []
    counted.set_model_unet_function_wrapper(
        lambda apply, a: (rows.append(a["input"].shape[0]), apply(a["input"], a["timestep"], **a["c"]))[1])
    zero = edit(host, counted, pos, target, neg, lat, sigmas, amount=0.0)
    guided = edit(host, model, pos, target, neg, lat, sigmas, amount=1.0)
    assert rel_err(zero, plain) < 1e-5
    assert rows == [2, 2, 2] * steps   # source; target with gradients; target at the moved latents
    assert torch.isfinite(guided).all() and rel_err(guided[1:], zero[1:]) > 1e-4
    assert torch.equal(guided[:1], zero[:1])   # the reconstruction row is never guided


def test_identical_sentences_give_a_zero_direction_and_the_reconstruction(host, tiny):
    model, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    same = direction(host, clip, pos, SOURCE, SOURCE)
    assert torch.equal(same[0][0], pos[0][0]) and torch.equal(same[0][1]["pooled_output"], pos[0][1]["pooled_output"])
    _, lat, sigmas = ddim(host, model, pos, latent(8), 4)
    out = edit(host, model, pos, same, neg, lat, sigmas, amount=0.5)
    assert rel_err(out[1:], out[:1]) < 1e-6


def test_zero_regulariser_weights_give_ddim_invert_exactly(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, SRC)
    ddim, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=latent(8), positive=pos, steps=5,
                             scheduler="ddim_uniform", start_at_step=1, cfg=1.0)
    zero, lat0, sigmas0 = invert(host, model, pos, latent(8), 5, start_at_step=1, lambda_auto_corr=0.0, lambda_kl=0.0)
    assert torch.equal(zero.trajectory, ddim.trajectory) and torch.equal(lat0["samples"], lat["samples"])
    assert torch.equal(sigmas0, sigmas) and zero.fingerprint == ddim.fingerprint


def test_direction_from_a_conditioning_pair_moves_the_pooled_output_too(host, tiny):
    _, clip, _ = tiny("sdxl")
    pos, cat, dog = (encode(host, clip, t) for t in (SRC, "a cat", "a dog"))
    out = call(host, "InvertEditEditDirection", conditioning=pos, source_sentences="", target_sentences="",
               source_embeddings=cat, target_embeddings=dog)[0]
    assert torch.allclose(out[0][0], pos[0][0] + dog[0][0] - cat[0][0], atol=1e-5)
    pooled = pos[0][1]["pooled_output"] + dog[0][1]["pooled_output"] - cat[0][1]["pooled_output"]
    assert torch.allclose(out[0][1]["pooled_output"], pooled, atol=1e-5)


def test_weights_loaded_under_inference_mode_take_gradients(host, tiny):
    """A checkpoint the host loads is made of inference tensors; the guidance's backward pass
    runs on per-forward weight copies and gives the same result as a model built outside it."""
    built = host.pack.demo.tiny_models.build_tiny_models
    with torch.inference_mode():
        model, clip, _ = built("sd1", seed=0)
    assert any(p.is_inference() for p in model.model.diffusion_model.parameters())
    plain_model, plain_clip, _ = tiny("sd1")
    outs = []
    for m, c in ((model, clip), (plain_model, plain_clip)):
        pos, neg = encode(host, c, SRC), encode(host, c, "")
        _, lat, sigmas = ddim(host, m, pos, latent(8), 4)
        outs.append(edit(host, m, pos, direction(host, c, pos), neg, lat, sigmas))
    assert rel_err(outs[0], outs[1]) < 1e-6


def test_a_pix2pix_zero_inversion_refined_by_direct_inversion_chains(host, tiny):
    """Its record is a DDIM one: Direct Inversion refines it, Apply Inversion applies it, and the
    MODEL's post-CFG correction acts inside the guider: the reconstruction row lands exactly on
    the image while the edit is guided by its maps."""
    model, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    src = latent(16)
    inv, lat, sigmas = invert(host, model, pos, src, 4)
    direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
    applied = call(host, "InvertEditApplyInversion", model=model, inversion=direct)[0]
    out = edit(host, applied, pos, direction(host, clip, pos), neg, lat, sigmas)
    assert rel_err(out[:1], src["samples"]) < 1e-5 and rel_err(out[1:], src["samples"]) > 1e-3
