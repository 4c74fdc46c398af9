"""Runs fallenshock/FlowEdit's code (Kulikov et al. 2025, ``FlowEdit_utils.py``) on given weights,
for the pack's parity test (``tests/host/test_flow_edit.py``). Never imported by the pack.

    PYTHONPATH=<checkout of fallenshock/FlowEdit>:<this folder> python flowedit_runner.py JOB OUT

JOB (``torch.save``): ``family`` ("flux" or "sd3"), the diffusers transformer (the host's tiny
model's weights, converted by ``tests/reference/flow_diffusers.py``), the source latent ``x_src``
(the model's space: the host's ``process_latent_in``), the prompts' embeddings as the host's text
encoders made them, the settings (``T_steps``, ``n_avg``, guidance scales, ``n_min``, ``n_max``)
and the ``seed``. OUT gets the edited latent and the scheduler's sigmas (which the pack's run is
given, so that both integrate over the same schedule).

Adapters, none changing what the reference computes:
- The pipeline is diffusers' own ``FluxPipeline`` / ``StableDiffusion3Pipeline`` holding the
  transformer and the scheduler; it has no text encoders: its ``encode_prompt`` returns the host's
  embeddings of each prompt (the text encoders are not part of the method, and the host's T5
  pads differently from diffusers').
- The authors' Flux code was written for diffusers 0.30, whose ``FluxPipeline`` had
  ``vae_scale_factor`` 16 and took the latent's size in pixels in ``prepare_latents`` and
  ``_unpack_latents``; later diffusers halved both conventions, which makes the code pack a
  quarter of the latent. The runner gives the pipeline 0.30's factor and those two methods as 0.30
  wrote them (sizes only; the latents and ids they return are the same tensors).
- ``torch.manual_seed(seed)`` before the call: the reference draws its noises with ``randn_like``.
- The schedulers are diffusers' ``FlowMatchEulerDiscreteScheduler`` with the released models'
  configurations (Flux: dynamic shifting, base 0.5, max 1.15; SD3: shift 3).
"""
from __future__ import annotations

import sys
import types

import torch

for name in ("cv2",):
    try:
        __import__(name)
    except ImportError:
        sys.modules[name] = types.ModuleType(name)

from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, StableDiffusion3Pipeline

from FlowEdit_utils import FlowEditFLUX, FlowEditSD3


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    embeds = job["embeddings"]   # prompt -> (context, pooled)
    transformer = job["transformer"].eval()
    if job["family"] == "flux":
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5,
                                                    max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
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

        method = FlowEditFLUX
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
        pipe = StableDiffusion3Pipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                                        text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None,
                                        transformer=transformer)

        def encode_prompt(prompt, prompt_2=None, prompt_3=None, negative_prompt=None, do_classifier_free_guidance=True,
                          device=None, **kwargs):
            context, pooled = embeds[prompt]
            negative, negative_pooled = embeds[negative_prompt]
            return context, negative, pooled, negative_pooled

        method = FlowEditSD3
    pipe.encode_prompt = encode_prompt
    torch.manual_seed(job["seed"])
    out = method(pipe, scheduler, job["x_src"], job["source"], job["target"], job.get("negative", ""),
                 **job["settings"])
    torch.save({"latent": out.detach(), "sigmas": scheduler.sigmas.detach().clone()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
