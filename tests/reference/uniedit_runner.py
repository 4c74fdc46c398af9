"""Runs DSL-Lab/UniEdit-Flow's diffusers code (Jiao et al., ICLR'26: ``UniEdit-Flow_diffusers/schedulers/
UniInvEulerScheduler.py``, ``UniEditEulerScheduler.py`` and ``demo_edit.py``'s sequence of calls) on given weights,
for the pack's parity test (``tests/host/test_uniedit_flow.py``). Never imported by the pack.

    PYTHONPATH=<checkout>/UniEdit-Flow_diffusers:<this folder> python uniedit_runner.py JOB OUT

JOB (``torch.save``): a job or a list of jobs (one process for all: the imports are most of its time), each: ``family`` ("flux" or "sd3"), the diffusers transformer (the host's tiny model's weights,
converted by ``tests/reference/flow_diffusers.py``), the image latent ``x_src`` (the model's space: the host's
``process_latent_in``; packed into 2x2 tokens for Flux, as ``utils.image2latent`` packs it), the prompts' embeddings
as the host's text encoders made them, the prompts (``inversion``: "" as demo_edit.py; ``source``, ``target``), the
schedule ``sigmas`` (the host's, without its final 0), ``steps``, ``alpha``, ``omega``, ``zero_initial`` and
``guidance``. OUT gets, for each job, the inverted latent and the edited latent (both rows of the authors' batch).

demo_edit.py's main block run as it is written (set_hyperparameters, the inversion call of the pipeline with the
inversion scheduler, ``utils.pack_edit_input``, the edit call with the edit scheduler), with these adapters, none
changing what the code computes:
- The pipeline is diffusers' own ``FluxPipeline`` / ``StableDiffusion3Pipeline`` holding the transformer; it has no
  text encoders or VAE: its ``encode_prompt`` returns the host's embeddings of each prompt (the text encoders are not
  part of the method), and the edit call returns its latent (``output_type='latent'``) instead of decoding it.
- The schedule: both calls get the host's sigmas (the pipelines' ``sigmas`` argument), and the schedulers are
  configured without a shift (``shift=1``, no dynamic shifting), so that they take those sigmas as they are (the
  released configurations shift the pipelines' default sigmas: Flux dynamically, SD3 by 3; the host's
  ModelSamplingFlux / SD3 sampling gives its schedule already shifted).
- ``memory_management`` (imported by ``utils.py`` for the video demo; it touches CUDA on import) is a stand-in.
- float32 on the CPU (demo_edit.py: float16 on CUDA).
"""
from __future__ import annotations

import sys
import types

import numpy as np
import torch

sys.modules.setdefault("memory_management", types.ModuleType("memory_management"))
sys.modules["memory_management"].load_models_to_gpu = sys.modules["memory_management"].unload_all_models = None

from diffusers import FluxPipeline, StableDiffusion3Pipeline  # noqa: E402

from schedulers.UniEditEulerScheduler import UniEditEulerScheduler  # noqa: E402
from schedulers.UniInvEulerScheduler import UniInvEulerScheduler  # noqa: E402
from utils import pack_edit_input  # noqa: E402


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    jobs = torch.load(job_path, weights_only=False)
    outs = [run(job) for job in (jobs if isinstance(jobs, list) else [jobs])]
    torch.save(outs if isinstance(jobs, list) else outs[0], out_path)


def run(job: dict) -> dict:
    embeds = job["embeddings"]   # prompt -> (context, pooled)
    transformer = job["transformer"].eval()
    flux = job["family"] == "flux"
    config = dict(shift=1.0, use_dynamic_shifting=False)
    invert_scheduler, edit_scheduler = UniInvEulerScheduler(**config), UniEditEulerScheduler(**config)

    def embedded(prompt):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        return (torch.cat([embeds[p][0] for p in prompts]), torch.cat([embeds[p][1] for p in prompts]))

    if flux:
        pipe = FluxPipeline(scheduler=invert_scheduler, vae=None, text_encoder=None, tokenizer=None,
                            text_encoder_2=None, tokenizer_2=None, transformer=transformer)

        def encode_prompt(prompt, prompt_2=None, device=None, **kwargs):
            context, pooled = embedded(prompt)
            return context, pooled, torch.zeros(context.shape[1], 3)
    else:
        pipe = StableDiffusion3Pipeline(scheduler=invert_scheduler, vae=None, text_encoder=None, tokenizer=None,
                                        text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None,
                                        transformer=transformer)

        def encode_prompt(prompt, prompt_2=None, prompt_3=None, device=None, **kwargs):
            context, pooled = embedded(prompt)
            return context, None, pooled, None
    pipe.encode_prompt = encode_prompt
    height, width = job["height"] * pipe.vae_scale_factor, job["width"] * pipe.vae_scale_factor
    sigmas = np.asarray(job["sigmas"], dtype=np.float32)

    # demo_edit.py, from "set hyper-parameters"
    invert_scheduler.set_hyperparameters(zero_initial=job["zero_initial"], alpha=job["alpha"])
    edit_scheduler.set_hyperparameters(alpha=job["alpha"], omega=job["omega"])
    image_latent = job["x_src"]
    pipe.scheduler = invert_scheduler
    invert_noise_latent = pipe(
        job["inversion"], num_inference_steps=job["steps"], sigmas=sigmas, guidance_scale=job["guidance"],
        latents=image_latent, output_type="latent", height=height, width=width).images
    edit_init_latent, edit_prompt = pack_edit_input(invert_noise_latent, job["source"], job["target"])
    pipe.scheduler = edit_scheduler
    edited = pipe(
        edit_prompt, num_inference_steps=job["steps"], sigmas=sigmas, guidance_scale=job["guidance"],
        latents=edit_init_latent, output_type="latent", height=height, width=width).images
    return {"inverted": invert_noise_latent.detach(), "edited": edited.detach(),
            "edit_sigmas": edit_scheduler.sigmas.detach().clone(),
            "inversion_sigmas": invert_scheduler.sigmas.detach().clone()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
