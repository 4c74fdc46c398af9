"""Runs FlowAlign/FlowAlign's code (Kim et al. 2025, ``diffusion/editing/sd3_edit.py``, the editor ``flowalign``:
``SD3FlowAlign.sample``) on given weights, for the pack's parity test (``tests/host/test_flow_align.py``). Never
imported by the pack.

    PYTHONPATH=<checkout of FlowAlign/FlowAlign>:<this folder> python flowalign_runner.py JOB OUT

JOB (``torch.save``): the diffusers SD3 transformer (the host's tiny model's weights, converted by
``tests/reference/flow_diffusers.py``), the source latent ``x_src`` (the model's space: the host's
``process_latent_in``), the prompts' embeddings as the host's text encoders made them, ``NFE``, ``cfg_scale`` and the
``seed``. OUT gets the edited latent and the scheduler's sigmas (which the pack's run is given, so that both integrate
over the same schedule).

Adapters, none changing what the reference computes:
- ``StableDiffusion3Pipeline.from_pretrained`` (which downloads the model) gives the authors' base class a pipeline
  holding the transformer and diffusers' ``FlowMatchEulerDiscreteScheduler`` with SD3's configuration (shift 3), and
  no text encoders or VAE: the prompts go in as embeddings (the authors' ``src_prompt_emb`` / ``tgt_prompt_emb``
  arguments, their ``--efficient_memory`` path), the host's.
- The sampler's ``encode`` / ``decode`` (the SD3 VAE's weights) give the source latent and return the edit's latent
  as they are: the pack's node takes and gives latents (VAE Encode and VAE Decode are the host's).
- ``torch.manual_seed(seed)`` before the call, as their ``util.set_seed`` (which needs torchvision): the reference
  draws each step's noise with ``randn_like``.
"""
from __future__ import annotations

import sys
import types

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import diffusion.base.sd3_sampler as sd3_sampler
from diffusion.editing.sd3_edit import get_editor


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    embeds = job["embeddings"]   # prompt -> (context, pooled)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    pipe = types.SimpleNamespace(scheduler=scheduler, tokenizer=None, tokenizer_2=None, tokenizer_3=None,
                                 text_encoder=None, text_encoder_2=None, text_encoder_3=None, vae=None,
                                 transformer=job["transformer"])
    sd3_sampler.StableDiffusion3Pipeline = types.SimpleNamespace(from_pretrained=lambda *args, **kwargs: pipe)
    editor = get_editor("flowalign", device="cpu")
    editor.vae = types.SimpleNamespace(device=torch.device("cpu"))
    x_src = job["x_src"]
    editor.encode = lambda image: x_src.clone()
    editor.decode = lambda z: z
    torch.manual_seed(job["seed"])
    out = editor.sample(src_img=torch.zeros(1, 3, 8, 8), src_prompt=job["source"], tgt_prompt=job["target"],
                        null_prompt="", NFE=job["NFE"], img_shape=None, cfg_scale=job["cfg_scale"], n_start=0,
                        src_prompt_emb=embeds[job["source"]], tgt_prompt_emb=embeds[job["target"]],
                        null_prompt_emb=embeds[""])
    torch.save({"latent": out.detach(), "sigmas": scheduler.sigmas.detach().clone()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
