"""Runs DNAEdit's reference code on given weights, for the pack's parity test (``tests/host/test_dnaedit.py``).
Never imported by the pack.

    PYTHONPATH=<checkout(s)>:<this folder> python dnaedit_runner.py JOBS OUT

JOBS: a list of jobs, OUT the list of their results. Two references, by a job's ``code``:

- ``"official"``: the authors' ``xiechenxi99/DNAEdit_code``, ``scripts/DNAEdit_utils.py``'s ``DNAEdit_FLUX`` /
  ``DNAEdit_SD3`` (the checkout's ``scripts`` folder on the path), called as their ``run_script_dnaedit.py``
  calls them, on diffusers' own ``FluxPipeline`` / ``StableDiffusion3Pipeline`` holding the transformer and
  the scheduler. OUT: the edited latent and the schedule they integrate (``timesteps / 1000`` with the 0 they
  append), and the points each inversion step evaluated the model at (recorded by a wrapper around the
  transformer that calls it unchanged).
- ``"rfie"``: the reimplementation ``Justin900429/RF-Image-Editing``, ``pipeline/dna_edit.py`` (the checkout's
  root on the path): its
  ``DNAEditFluxPipeline.denoise`` run twice as its ``__call__`` runs it (inverse, then the edit), on the
  packed latent and the host's embeddings. OUT: the inverted latent, ``dx_list``, ``velocity_list``, the
  edited latent and the schedule (``timesteps / 1000``: ``N + 1`` points, the last ``shift(1/1000)``, not 0).

A job (``torch.save``): ``code``, ``family`` ("flux" or "sd3"), the diffusers transformer (the host's tiny
model's weights, converted by ``tests/reference/flow_diffusers.py``), the source latent ``x_src`` (the model's
space: the host's ``process_latent_in``), the prompts' embeddings as the host's text encoders made them, the
settings and the ``seed``.

Adapters, none changing what the reference computes:
- No text encoders: ``encode_prompt`` returns the host's embeddings of each prompt (as
  ``flowedit_runner.py``); the official code was written for diffusers 0.30's ``FluxPipeline`` (its
  ``vae_scale_factor`` 16, ``prepare_latents`` and ``_unpack_latents`` in pixels), given here as 0.30 wrote
  them (sizes only), as ``flowedit_runner.py`` does for FlowEdit's code, on which the authors built theirs.
- ``torch.manual_seed(seed)`` before the call: both draw their noise with ``randn_like`` (the official script
  seeds so, ``run_script_dnaedit.py``).
- Modules their files import but DNAEdit does not use (``ipdb``; ``torchvision``, imported by the
  reimplementation's attention processors) are empty stand-ins where they are not installed.
- The schedulers are diffusers' ``FlowMatchEulerDiscreteScheduler`` with the released models' configurations
  (Flux: dynamic shifting, base 0.5, max 1.15; SD3: shift 3).
"""
from __future__ import annotations

import sys
import types

import torch

from flow_pipelines import flux_scheduler, reference_pipeline, scheduler_for

# after diffusers, which looks torchvision up (a stand-in without a spec would break its look-up)
for name in ("ipdb", "torchvision", "torchvision.transforms", "torchvision.utils"):
    try:
        __import__(name)
    except ImportError:
        module = sys.modules[name] = types.ModuleType(name)
        if name == "torchvision.utils":
            module.save_image = None
        if name == "torchvision.transforms":
            sys.modules["torchvision"].transforms = module


class Recorder(torch.nn.Module):
    """The transformer, called unchanged; the hidden states of each call kept."""

    def __init__(self, transformer):
        super().__init__()
        self.inner, self.seen = transformer, []

    @property
    def config(self):
        return self.inner.config

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, *args, **kwargs):
        self.seen.append(kwargs["hidden_states"].detach().clone())
        return self.inner(*args, **kwargs)


def official(job: dict) -> dict:
    from DNAEdit_utils import DNAEdit_FLUX, DNAEdit_SD3

    embeds = job["embeddings"]   # prompt -> (context, pooled)
    transformer = job["transformer"].eval()
    scheduler = scheduler_for(job["family"])
    pipe = reference_pipeline(job["family"], transformer, scheduler, embeds)
    method = DNAEdit_FLUX if job["family"] == "flux" else DNAEdit_SD3
    recorder = Recorder(transformer)
    object.__setattr__(pipe, "transformer", recorder)   # not registered as a pipeline component: only wrapped
    torch.manual_seed(job["seed"])
    out = method(pipe, scheduler, job["x_src"], job["source"], job["target"], job.get("negative", ""),
                 **job["settings"])
    sigmas = torch.cat([scheduler.timesteps, torch.zeros(1)]) / 1000.0
    return {"latent": out.detach(), "sigmas": sigmas, "seen": recorder.seen}


def rfie(job: dict) -> dict:
    from pipeline.dna_edit import DNAEditFluxPipeline

    embeds = job["embeddings"]
    transformer = job["transformer"].eval()
    scheduler = flux_scheduler()
    pipe = DNAEditFluxPipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                               text_encoder_2=None, tokenizer_2=None, transformer=transformer)
    x_src = job["x_src"]
    h, w = x_src.shape[-2:]
    packed = x_src.view(1, x_src.shape[1], h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(
        1, (h // 2) * (w // 2), x_src.shape[1] * 4)   # diffusers' _pack_latents
    ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, "cpu", torch.float32)
    s = job["settings"]
    common = dict(latent_image_ids=ids, num_inference_steps=s["num_inference_steps"],
                  start_timestep=s["start_timestep"], device=torch.device("cpu"))

    def prompt(name):
        context, pooled = embeds[job[name]]
        return dict(prompt_embeds=context, pooled_prompt_embeds=pooled, text_ids=torch.zeros(context.shape[1], 3))

    torch.manual_seed(job["seed"])
    with torch.inference_mode():
        inverted, dx_list, velocity_list = pipe.denoise(latents=packed, **prompt("source"),
                                                        guidance_scale=s["source_guidance_scale"], inverse=True,
                                                        **common)
        edited = pipe.denoise(latents=inverted, **prompt("target"), guidance_scale=s["target_guidance_scale"],
                              dx_list=dx_list, velocity_list=velocity_list, original_latents=packed, mvg=s["mvg"],
                              inverse=False, **common)
    return {"inverted": inverted.clone(), "dx": [d.clone() for d in dx_list],
            "velocity": [v.clone() for v in velocity_list], "latent": edited.clone(),
            "sigmas": (scheduler.timesteps / scheduler.config.num_train_timesteps).clone()}


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    jobs = torch.load(job_path, weights_only=False)
    torch.save([official(job) if job["code"] == "official" else rfie(job) for job in jobs], out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
