"""Runs hansam95/NMG's Noise Map Guidance code (Cho et al., ICLR 2024) on given weights, for the
pack's parity test (``tests/host/test_noise_map.py``). Never imported by the pack.

    PYTHONPATH=<checkout of hansam95/NMG>:<this folder> python nmg_runner.py JOB OUT

JOB (``torch.save``): the diffusers/transformers UNet, text encoder and VAE, the tokenizer folder,
the noise maps (the pack's DDIM inversion, diffusers scale, z_0 first), the prompts, steps and
the cases. OUT gets each case's final latents (diffusers scale) from the reference's
``prompt_to_prompt.pipeline_stable_diffusion_nmg.NMGPipeline``: ``__call__`` (source and target
rows, noise map guidance on the source) with its ``EmptyControl``, or ``recon`` (the source
prompt alone).

Adapters, none changing what the reference computes:
- ``cv2`` is imported by the reference for drawing text under images only; where OpenCV is not
  installed a stand-in module is registered under its name.
- The scheduler is diffusers' ``DDIMScheduler`` configured like the host's ``ddim_uniform``
  (``steps_offset=1``, ``set_alpha_to_one=True``); the notebooks use ``set_alpha_to_one=False``.
- The pipeline decodes its result; the latents are taken from its per-step ``callback``.
"""
from __future__ import annotations

import sys
import types

import torch

try:
    import cv2  # noqa: F401
except ImportError:
    sys.modules["cv2"] = types.ModuleType("cv2")

from diffusers import DDIMScheduler
from transformers import CLIPTokenizer

from prompt_to_prompt.pipeline_stable_diffusion_nmg import NMGPipeline
from prompt_to_prompt.ptp_utils import EmptyControl


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    for model in (job["unet"], job["text_encoder"], job["vae"]):
        model.eval().requires_grad_(False)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=True, steps_offset=1)
    pipe = NMGPipeline(vae=job["vae"], text_encoder=job["text_encoder"],
                       tokenizer=CLIPTokenizer.from_pretrained(job["tokenizer"], model_max_length=77), unet=job["unet"],
                       scheduler=scheduler, feature_extractor=None, safety_checker=None, inverse_scheduler=None,
                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    forward = list(job["noise_maps"])
    size = forward[0].shape[-1] * pipe.vae_scale_factor
    results = {}
    for name, case in job["cases"].items():
        last = {}

        def keep(i, t, latents):
            last["latents"] = latents.detach().clone()

        kwargs = dict(height=size, width=size, num_inference_steps=job["steps"], grad_scale=case["grad_scale"],
                      guidance_noise_map=case["scale"], guidance_text=case["cfg"], noise_cond_loss_type=case["loss"],
                      forward_latents=forward, output_type="np", callback=keep, callback_steps=1)
        if case["rows"] == "pair":
            pipe(prompt=[job["source"], job["target"]], controller=EmptyControl(), **kwargs)
        else:
            pipe.recon(prompt=job["source"], **kwargs)
        results[name] = last["latents"]
    torch.save(results, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
