"""diffusers' own ``FluxPipeline`` / ``StableDiffusion3Pipeline`` around a given transformer, as the flow editors'
reference code of the FlowEdit lineage calls them (FlowEdit's ``FlowEdit_utils.py``, DNAEdit's ``DNAEdit_utils.py``),
for the parity runners in this folder (``flowedit_runner.py``, ``dnaedit_runner.py``). Never imported by the pack.

Adapters, none changing what the references compute:
- No text encoders: ``encode_prompt`` returns the host's embeddings of each prompt (``embeds``: prompt -> (context,
  pooled)); the text encoders are not part of the methods, and the host's T5 pads differently from diffusers'.
- That code was written for diffusers 0.30, whose ``FluxPipeline`` had ``vae_scale_factor`` 16 and took the latent's
  size in pixels in ``prepare_latents`` and ``_unpack_latents``; later diffusers halved both conventions, which makes
  the code pack a quarter of the latent. The Flux pipeline gets 0.30's factor and those two methods as 0.30 wrote
  them (sizes only; the latents and ids they return are the same tensors).
- The schedulers are diffusers' ``FlowMatchEulerDiscreteScheduler`` with the released models' configurations (Flux:
  dynamic shifting, base 0.5, max 1.15; SD3: shift 3).
"""
from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, StableDiffusion3Pipeline


def flux_scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096)


def scheduler_for(family: str) -> FlowMatchEulerDiscreteScheduler:
    """The released model's scheduler: ``family`` "flux" or "sd3"."""
    return flux_scheduler() if family == "flux" else FlowMatchEulerDiscreteScheduler(shift=3.0)


def reference_pipeline(family: str, transformer, scheduler, embeds: dict):
    """The pipeline the FlowEdit-lineage code is handed: ``family`` "flux" or "sd3", holding ``transformer`` and
    ``scheduler``, its prompts' embeddings from ``embeds``."""
    if family == "flux":
        pipe = FluxPipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None, text_encoder_2=None,
                            tokenizer_2=None, transformer=transformer)

        def encode_prompt(prompt, prompt_2=None, device=None, **kwargs):
            context, pooled = embeds[prompt]
            return context, pooled, torch.zeros(context.shape[1], 3)

        def prepare_latents(batch_size, num_channels_latents, height, width, dtype, device, generator, latents=None):
            height, width = 2 * (int(height) // pipe.vae_scale_factor), 2 * (int(width) // pipe.vae_scale_factor)
            return latents.to(device=device, dtype=dtype), pipe._prepare_latent_image_ids(
                batch_size, height // 2, width // 2, device, dtype)

        def unpack_latents(latents, height, width, vae_scale_factor):
            b, _, c = latents.shape
            height, width = height // vae_scale_factor, width // vae_scale_factor
            latents = latents.view(b, height, width, c // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
            return latents.reshape(b, c // 4, height * 2, width * 2)

        pipe.vae_scale_factor = 16
        pipe.prepare_latents, pipe._unpack_latents = prepare_latents, unpack_latents
    else:
        pipe = StableDiffusion3Pipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                                        text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None,
                                        transformer=transformer)

        def encode_prompt(prompt, prompt_2=None, prompt_3=None, negative_prompt=None, do_classifier_free_guidance=True,
                          device=None, **kwargs):
            context, pooled = embeds[prompt]
            negative, negative_pooled = embeds[negative_prompt]
            return context, negative, pooled, negative_pooled

    pipe.encode_prompt = encode_prompt
    return pipe
