"""LEDITS++ (edit-friendly DDPM inversion + LEDITS++ Guidance): parity with diffusers'
LEditsPPPipelineStableDiffusion on the Toy World Model's weights (an SD1.x UNet with attention
at latent/4, where the reference takes its masks), exact limits, one batched call a step, and
refusals.

Two things in the reference are worked around in the parity test, both outside the math:
- its ``invert`` unpacks ``encode_prompt``'s (concept, negative) as (negative, concept), so
  its source guidance is ``eps_src + s * (eps_empty - eps_src)``, away from the source prompt.
  Our inversion with the prompts swapped reproduces it; the nodes do what the paper says.
- with transformers 5.x the tokenizer's ``length`` counts the padding, so the reference would
  sum the maps of all 75 positions; the test's tokenizer returns the unpadded length that the
  reference's comment ("not counting startoftext and endoftext") intends.
Its last step (to sigma 0) also draws no noise, where our edit-friendly inversion keeps the
residual that makes the reconstruction exact; the comparison takes that one term out.
"""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, custom_sample, encode, rel_err

SRC = "a red circle on a blue background"
CONCEPTS = [("a yellow background", "add", 5.0, 0.9, 0), ("a blue background", "remove", 4.0, 0.8, 2)]


def chain(host, clip, concepts=CONCEPTS):
    out = None
    for text, direction, scale, threshold, warmup in concepts:
        out = call(host, "InvertEditLEDITSConcept", clip=clip, text=text, direction=direction, scale=scale,
                   warmup=warmup, cooldown=0, threshold=threshold, weight=1.0, concepts=out)[0]
    return out


def invert(host, model, latent, pos, neg, steps=25, start=5, seed=7):
    return call(host, "InvertEditDDPMInvert", model=model, latent=latent, positive=pos, negative=neg, steps=steps,
                scheduler="ddim_uniform", start_at_step=start, cfg=3.5, seed=seed)


def edit(host, model, neg, concepts, inversion, mask="intersect", user_mask=None):
    inv, lat, sigmas = inversion
    guider = call(host, "InvertEditLEDITSGuidance", model=model, negative=neg, concepts=concepts, mask=mask,
                  user_mask=user_mask)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "InvertEditDDPMSampler", inversion=inv)[0], sigmas=sigmas,
                latent_image=lat)[0]["samples"]


@pytest.fixture(scope="module")
def toy(host):
    return host.pack.demo.toy_model.load_toy_model("one object (128 px)")


def shims():
    """The reference's tokenizer and scheduler with the two version workarounds (module docstring)."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    class Tokenizer(CLIPTokenizer):
        def __call__(self, *args, **kwargs):
            out = super().__call__(*args, **kwargs)
            if kwargs.get("return_length"):
                out["length"] = out["attention_mask"].sum(1)
            return out

    class Scheduler(DDIMScheduler):   # the reference indexes alphas with a float tensor, which torch 2.13 refuses
        def add_noise(self, x, noise, t):
            return super().add_noise(x, noise, t.long())

    scheduler = Scheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          clip_sample=False, set_alpha_to_one=True, steps_offset=1)
    return Tokenizer, scheduler


def reference_edit(pipe, mask):
    texts, directions, scales, thresholds, warmups = zip(*CONCEPTS)
    with torch.no_grad():
        return pipe(negative_prompt="", editing_prompt=list(texts), reverse_editing_direction=[d == "remove" for d in directions],
                    edit_guidance_scale=list(scales), edit_threshold=list(thresholds), edit_warmup_steps=list(warmups),
                    use_cross_attn_mask=mask != "noise", use_intersect_mask=mask == "intersect",
                    output_type="latent").images / pipe.vae.config.scaling_factor


def compare(inversion, ours, ref, scale):
    """(start latent difference, edit difference without our last-step residual)."""
    inv, lat, sigmas = inversion
    start = rel_err(lat["samples"] / (1 + sigmas[0] ** 2).sqrt(), ref[0] / scale)
    return start, rel_err(ours - inv.clues["ddpm.corrections"][-1] / scale, ref[1])


@pytest.fixture(scope="module")
def reference(host, toy, tiny, bridge):
    pytest.importorskip("diffusers")
    from diffusers import LEditsPPPipelineStableDiffusion

    Tokenizer, scheduler = shims()
    model, clip, _ = toy
    _, _, vae = tiny("sd1")   # any 8x VAE with 4 channels: it only turns the test image into the source latent
    pipe = LEditsPPPipelineStableDiffusion(
        vae=bridge.diffusers_vae(vae), text_encoder=bridge.diffusers_text_encoder(clip),
        tokenizer=Tokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"), model_max_length=77),
        unet=bridge.diffusers_unet(model), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    x0, _ = pipe.encode_image(image)
    # 25 steps with skip 0.25 = 20 edit steps, the host's ddim_uniform 25 from step 5
    pipe.invert(image=image, source_prompt=SRC, source_guidance_scale=3.5, num_inversion_steps=20, skip=0.25,
                generator=torch.Generator().manual_seed(7))
    return pipe, {"samples": x0 / pipe.vae.config.scaling_factor}


@pytest.mark.parametrize("mask", ["intersect", "attention", "noise"])
def test_parity_with_diffusers_ledits_pp(host, toy, reference, mask):
    pipe, latent = reference
    model, clip, _ = toy
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    inversion = invert(host, model, latent, neg, pos)   # the reference's swapped source guidance, see above
    ours = edit(host, model, neg, chain(host, clip), inversion, mask)
    start, err = compare(inversion, ours, (pipe.init_latents, reference_edit(pipe, mask)), pipe.vae.config.scaling_factor)
    print(f"\nLEDITS++ vs diffusers' LEditsPPPipelineStableDiffusion, toy model, 20 steps, 2 concepts, mask {mask}: "
          f"start latent {start:.1e}, edit {err:.1e}")
    assert start < 1e-5 and err < 1e-4


@pytest.mark.parametrize("mask", ["intersect", "noise"])
def test_parity_with_diffusers_ledits_pp_xl(host, tiny, bridge, mask):
    """The tiny SDXL model attends at latent/2 and latent/4, so the reference finds its masks. Its
    ``invert`` guides correctly; it zeroes the last 3 noise maps by default (``num_zero_noise_steps``),
    which the comparison turns off: our sampler uses every map."""
    pytest.importorskip("diffusers")
    from diffusers import LEditsPPPipelineStableDiffusionXL

    Tokenizer, scheduler = shims()
    model, clip, vae = tiny("sdxl")
    te_l, te_g = bridge.diffusers_text_encoders_sdxl(clip)
    path = str(host.path / "comfy" / "sd1_tokenizer")
    pipe = LEditsPPPipelineStableDiffusionXL(
        vae=bridge.diffusers_vae(vae, model.model.latent_format.scale_factor), text_encoder=te_l, text_encoder_2=te_g,
        tokenizer=Tokenizer.from_pretrained(path, model_max_length=77),
        tokenizer_2=Tokenizer.from_pretrained(path, model_max_length=77, pad_token="!"),
        unet=bridge.diffusers_unet(model), scheduler=scheduler, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    x0, _ = pipe.encode_image(image)
    with torch.no_grad():
        pipe.invert(image=image, source_prompt=SRC, negative_prompt="", source_guidance_scale=3.5, num_inversion_steps=20,
                    skip=0.25, num_zero_noise_steps=0, generator=torch.Generator().manual_seed(7))
    scale = pipe.vae.config.scaling_factor
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    inversion = invert(host, model, {"samples": x0 / scale}, pos, neg)
    ours = edit(host, model, neg, chain(host, clip), inversion, mask)
    start, err = compare(inversion, ours, (pipe.init_latents, reference_edit(pipe, mask)), scale)
    print(f"\nLEDITS++ vs diffusers' LEditsPPPipelineStableDiffusionXL, tiny SDXL, 20 steps, 2 concepts, mask {mask}: "
          f"start latent {start:.1e}, edit {err:.1e}")
    assert start < 1e-5 and err < 1e-4


def test_limits_and_one_batched_call_per_step(host, toy):
    model, clip, _ = toy
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))}
    inversion = invert(host, model, latent, pos, neg, steps=10, start=2)
    plain = custom_sample(host, model, neg, neg, 1.0, call(host, "InvertEditDDPMSampler", inversion=inversion[0])[0],
                          inversion[2], inversion[1])
    zero = edit(host, model, neg, chain(host, clip, [("a yellow background", "add", 0.0, 0.9, 0)]), inversion)
    both = chain(host, clip, [("a yellow background", "add", 5.0, 0.9, 0), ("a yellow background", "remove", 5.0, 0.9, 0)])
    counted = model.clone()
    rows = []
    counted.set_model_unet_function_wrapper(
        lambda apply, a: (rows.append(a["input"].shape[0]), apply(a["input"], a["timestep"], **a["c"]))[1])
    cancel = edit(host, counted, neg, both, inversion)
    edited = edit(host, model, neg, chain(host, clip), inversion)
    assert rel_err(zero, plain) < 1e-6 and rel_err(cancel, plain) < 1e-5
    assert rel_err(edited, plain) > 1e-2
    assert rows == [1 + 2] * (len(inversion[2]) - 1)
    # a user mask confines every concept: with the left half masked the right half stays much closer to the
    # unedited run than without it (an empty mask, which would stop every concept, is refused: the bad-input table)
    half = torch.zeros(1, 64, 64)
    half[..., :32] = 1.0
    masked = edit(host, model, neg, chain(host, clip), inversion, user_mask=half)
    right = (Ellipsis, slice(masked.shape[-1] // 2, None))
    assert rel_err(masked[right], plain[right]) < 0.5 * rel_err(edited[right], plain[right])


def test_sdxl_layout_runs_with_attention_masks(host, tiny):
    model, clip, _ = tiny("sdxl")
    pos, neg = encode(host, clip, SRC), encode(host, clip, "")
    latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))}
    inversion = invert(host, model, latent, pos, neg, steps=10, start=2)
    plain = edit(host, model, neg, chain(host, clip, [("glasses", "add", 0.0, 0.9, 0)]), inversion)
    out = edit(host, model, neg, chain(host, clip, [("glasses", "add", 5.0, 0.5, 0)]), inversion, mask="attention")
    assert rel_err(out, plain) > 1e-3


def test_refusals(host, toy, tiny):
    model, clip, _ = toy
    neg = encode(host, clip, "")
    sega = call(host, "InvertEditSEGAConcept", conditioning=encode(host, clip, "glasses"), direction="add", scale=5.0,
                warmup=0, cooldown=0, threshold=0.9, weight=1.0)[0]
    with pytest.raises(ValueError, match="LEDITS\\+\\+ Guidance: concept 1 comes from a SEGA Concept node"):
        call(host, "InvertEditLEDITSGuidance", model=model, negative=neg, concepts=sega, mask="intersect")
    assert call(host, "InvertEditLEDITSGuidance", model=model, negative=neg, concepts=sega, mask="noise")[0] is not None
    with pytest.raises(ValueError, match="LEDITS\\+\\+ Concept: input 'text' is empty"):
        chain(host, clip, [("  ", "add", 5.0, 0.9, 0)])
    patched = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent={"samples": torch.zeros(1, 4, 16, 16)},
                   source_prompt=SRC, target_prompt="a red square on a blue background", mode="replace", reweight="",
                   cross_replace=0.8, self_replace=0.4)[0]
    with pytest.raises(ValueError, match="LEDITS\\+\\+ Guidance: the input MODEL already has attention replace patches"):
        call(host, "InvertEditLEDITSGuidance", model=patched, negative=neg, concepts=chain(host, clip), mask="intersect")
