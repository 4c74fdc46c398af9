"""DiffEdit Mask against diffusers' ``StableDiffusionDiffEditPipeline.generate_mask`` (the
method's public code) on the same tiny SD1 weights.

The two are lined up outside the math: the pipeline gets the node's latent already scaled (a
4-channel ``image`` skips its VAE), the prompts' embeddings from the host's text encoder, a
1000-step DDIM schedule without offset (its strength-0.5 timestep is then 499, the timestep of
the node's sigma), and the same seed (both draw the noises as one ``randn`` of
``[samples, 4, h, w]``). The pipeline runs at its default guidance 7.5 with the empty prompt as
both negatives (at guidance 1 this deprecated pipeline swaps its embeddings and fails): with the
same negative, guidance multiplies the difference by 7.5, which the normalisation removes, and
the node compares the conditional predictions.
"""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode

SRC, TGT = "a red circle on a blue background", "a red square on a blue background"
SCHED = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
             clip_sample=False, set_alpha_to_one=True, steps_offset=0)


@pytest.mark.parametrize("ratio_threshold", [0.5, 0.3])
def test_mask_matches_diffusers_generate_mask(host, tiny, request, ratio_threshold):
    pytest.importorskip("diffusers")
    from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionDiffEditPipeline

    model, clip, _ = tiny("sd1")
    pipe = StableDiffusionDiffEditPipeline(
        **request.getfixturevalue("sd1_pipeline_parts"), scheduler=DDIMScheduler(**SCHED),
        inverse_scheduler=DDIMInverseScheduler(**SCHED), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    lat = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 5.0}
    src, tgt = encode(host, clip, SRC), encode(host, clip, TGT)
    mask, soft = call(host, "InvertEditDiffEditMask", model=model, latent=lat, source=src, target=tgt, strength=0.5,
                      samples=4, threshold=ratio_threshold, seed=7)
    if ratio_threshold != 0.5:   # the pipeline cuts at 0.5: compare the soft map cut at the same place
        mask = (soft > 0.5).float()
    scale = model.model.latent_format.scale_factor
    with torch.no_grad():
        empty = encode(host, clip, "")[0][0]
        ref = pipe.generate_mask(image=lat["samples"] * scale, source_prompt_embeds=src[0][0], target_prompt_embeds=tgt[0][0],
                                 source_negative_prompt_embeds=empty, target_negative_prompt_embeds=empty,
                                 num_maps_per_mask=4, mask_encode_strength=0.5, mask_thresholding_ratio=3.0,
                                 num_inference_steps=1000, guidance_scale=7.5, generator=torch.Generator().manual_seed(7),
                                 output_type="np")
    ref = torch.as_tensor(ref).float().reshape(16, 16)
    ours = mask[0, ::8, ::8]
    differ = int((ours != ref).sum())
    print(f"\nDiffEdit Mask vs diffusers' generate_mask (sd1, 16x16, 4 noises): {differ} of 256 cells differ; "
          f"{int(ref.sum())} cells in the reference's mask")
    assert 0 < ref.sum() < 256 and differ == 0
