"""Runs phymhan/prompt-to-prompt's ProxEdit code (Han et al., "ProxEdit", WACV 2024) on given
weights, for the pack's parity test (``tests/host/test_proximal.py``). Never imported by the pack.

    PYTHONPATH=<checkout of phymhan/prompt-to-prompt>:<this folder> python proxedit_runner.py JOB OUT

JOB (``torch.save``): the diffusers/transformers UNet, text encoder and VAE, the tokenizer folder,
the source latent (diffusers scale), the prompts, steps, cfg and the cases. OUT gets each case's
final latents (both rows, diffusers scale), from the reference's own functions:

- "npi" cases: ``negative_prompt_inversion``'s ``NegativePromptInversion.ddim_loop`` (its DDIM
  inversion; the source embedding as the null text at every step, as its ``invert`` returns
  it) and ``text2image_ldm_stable`` (``ptp_utils.diffusion_step``: the proximal operator, the
  reconstruction and inversion guidance, the mask's dilation), with its ``EmptyControl``;
- "masa" cases: ``masactrl.diffuser_utils.MasaCtrlPipeline`` with the source prompt as the
  negative (ProxMasaCtrl: guidance 1 for the source row, the target's term thresholded over the
  target rows, from ``prox_step``), with no attention editor registered.

Adapters, none changing what the reference computes:
- ``cv2`` is imported by the reference for drawing text under images only; where OpenCV is not
  installed a stand-in module is registered under its name.
- Its progress bar is ``tqdm.notebook``'s, which needs Jupyter widgets; the console bar stands in.
- The scheduler is the reference's ``DDIMSchedulerDev``, configured like the host's
  ``ddim_uniform`` (``steps_offset=1``, ``set_alpha_to_one=True``), which the pack's DDIM
  Invert uses; the reference builds it with ``set_alpha_to_one=False``.
- ``negative_prompt_inversion.NUM_DDIM_STEPS`` (its module-wide step count, 50) is set to the
  job's steps.
- ``MasaCtrlPipeline`` decodes its result with the VAE; its ``latent2image`` is replaced on the
  instance by the identity so the latents come back.
"""
from __future__ import annotations

import sys
import types

import torch

import tqdm
import tqdm.notebook

try:
    import cv2  # noqa: F401
except ImportError:
    sys.modules["cv2"] = types.ModuleType("cv2")
tqdm.notebook.tqdm = tqdm.tqdm   # the notebook bar needs ipywidgets; the reference only shows progress with it

from transformers import CLIPTokenizer

import negative_prompt_inversion as npi_code
from masactrl.diffuser_utils import MasaCtrlPipeline
from scheduler_dev import DDIMSchedulerDev


class Pipe:
    """What ``negative_prompt_inversion`` reads of a StableDiffusionPipeline."""

    def __init__(self, job: dict):
        self.device = torch.device("cpu")
        self.unet, self.text_encoder, self.vae = job["unet"], job["text_encoder"], job["vae"]
        for model in (self.unet, self.text_encoder, self.vae):
            model.eval().requires_grad_(False)
        self.tokenizer = CLIPTokenizer.from_pretrained(job["tokenizer"], model_max_length=77)
        self.scheduler = scheduler()


def scheduler() -> DDIMSchedulerDev:
    return DDIMSchedulerDev(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                            set_alpha_to_one=True, steps_offset=1)


def run_npi(pipe: Pipe, job: dict, x_stars: list, uncond: list, case: dict) -> torch.Tensor:
    pull = case["pull"]
    latents, _ = npi_code.text2image_ldm_stable(
        pipe, [job["source"], job["target"]], npi_code.EmptyControl(), num_inference_steps=job["steps"],
        guidance_scale=job["cfg"], latent=x_stars[-1], uncond_embeddings=uncond, return_type="latent",
        inference_stage=True, prox=case["prox"], quantile=case["quantile"],
        image_enc=x_stars[0] if pull in ("reconstruction", "both") else None,
        recon_lr=case["recon_lr"] if pull != "none" else 0, recon_t=case["recon_t"] if pull != "none" else 1000,
        inversion_guidance=pull in ("inversion", "both"), x_stars=x_stars, dilate_mask=case["dilate"])
    return latents


def run_masa(job: dict, x_t: torch.Tensor, case: dict) -> torch.Tensor:
    pipe = MasaCtrlPipeline(vae=job["vae"], text_encoder=job["text_encoder"],
                            tokenizer=CLIPTokenizer.from_pretrained(job["tokenizer"], model_max_length=77),
                            unet=job["unet"], scheduler=scheduler(), safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.latent2image = lambda latents, return_type="np": latents
    size = x_t.shape[-1] * 8
    return pipe([job["source"], job["target"]], height=size, width=size, num_inference_steps=job["steps"],
                latents=x_t.expand(2, -1, -1, -1), guidance_scale=[1, job["cfg"]], neg_prompt=job["source"],
                prox=case["prox"], prox_step=case["start_step"], quantile=case["quantile"])


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    npi_code.NUM_DDIM_STEPS = job["steps"]
    pipe = Pipe(job)
    inverter = npi_code.NegativePromptInversion(pipe)
    inverter.init_prompt(job["source"])
    with torch.no_grad():
        x_stars = inverter.ddim_loop(job["latent"])
    _, cond = inverter.context.chunk(2)
    uncond = [cond] * job["steps"]
    results = {"x_stars": torch.stack([x.detach().clone() for x in x_stars])}
    for name, case in job["cases"].items():
        with torch.no_grad():
            out = run_npi(pipe, job, x_stars, uncond, case) if case["code"] == "npi" else run_masa(job, x_stars[-1], case)
        results[name] = out.detach().clone()
    torch.save(results, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
