"""Runs fallenshock/FlowEdit's code (Kulikov et al. 2025, ``FlowEdit_utils.py``) on given weights,
for the pack's parity test (``tests/host/test_flow_edit.py``). Never imported by the pack.

    PYTHONPATH=<checkout of fallenshock/FlowEdit>:<this folder> python flowedit_runner.py JOB OUT

JOB (``torch.save``): ``family`` ("flux" or "sd3"), the diffusers transformer (the host's tiny
model's weights, converted by ``tests/reference/flow_diffusers.py``), the source latent ``x_src``
(the model's space: the host's ``process_latent_in``), the prompts' embeddings as the host's text
encoders made them, the settings (``T_steps``, ``n_avg``, guidance scales, ``n_min``, ``n_max``)
and the ``seed``. OUT gets the edited latent and the scheduler's sigmas (which the pack's run is
given, so that both integrate over the same schedule).

Adapters, none changing what the reference computes (the pipeline's: ``flow_pipelines.py``):
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

from FlowEdit_utils import FlowEditFLUX, FlowEditSD3
from flow_pipelines import reference_pipeline, scheduler_for


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    embeds = job["embeddings"]   # prompt -> (context, pooled)
    transformer = job["transformer"].eval()
    scheduler = scheduler_for(job["family"])
    pipe = reference_pipeline(job["family"], transformer, scheduler, embeds)
    method = FlowEditFLUX if job["family"] == "flux" else FlowEditSD3
    torch.manual_seed(job["seed"])
    out = method(pipe, scheduler, job["x_src"], job["source"], job["target"], job.get("negative", ""),
                 **job["settings"])
    torch.save({"latent": out.detach(), "sigmas": scheduler.sigmas.detach().clone()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
