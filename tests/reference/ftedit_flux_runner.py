"""Runs Justin900429/RF-Image-Editing's FTEdit port for Flux.1 (``pipeline/ft_edit.py``'s ``FTEditFluxPipeline.denoise``
with ``processor/ft_editing_attn_processor.py``'s controllers, as ``notebook/demo_ftedit.ipynb`` sets them up) on given
weights, for the pack's Flux parity test (``tests/host/test_ftedit.py``). Never imported by the pack.

    PYTHONPATH=<checkout of Justin900429/RF-Image-Editing>:<this folder> python ftedit_flux_runner.py JOB OUT

JOB (``torch.save``): the diffusers ``FluxTransformer2DModel`` (the host's tiny model's weights), the trajectory the
edit's source row follows (packed latents, inversion order: ``latents_list``), the prompts' embeddings (T5 tokens,
512 as the port's ``max_sequence_length``; pooled CLIP-L), the image ids, the prompts, the settings and the T5
tokenizer's folder. OUT: the edited latent (packed) and the scheduler's sigmas.

The edit alone is compared (``denoise(..., do_residual=True)``): the port's inversion evaluates the model
``fixed_point_steps`` times at one point, which the pack does not copy (FTEdit Invert is the authors' fixed point),
so both are handed the same trajectory. Adapters, none changing what the port computes:
- The pipeline is the port's class holding the transformer, diffusers' scheduler with Flux.1's configuration and the
  T5 tokenizer (no VAE, no text encoders: the embeddings are the host's).
- ``torchvision`` (which the port's package imports for another method's image helpers) is a stand-in, after
  diffusers' Flux modules are imported without it.
- The controllers' per-step counters are given the tiny model's double-block count where the notebook passes 37
  (SD3.5 Large's; over Flux's 19 blocks it counts about half a step a step): the step fractions as the authors
  count them.
"""
from __future__ import annotations

import importlib.machinery
import sys
import types

import torch
import diffusers.models.embeddings  # noqa: F401  (imported before the torchvision stand-in)
import diffusers.models.transformers.transformer_flux  # noqa: F401
import diffusers.pipelines.flux.pipeline_flux  # noqa: F401
from diffusers import FlowMatchEulerDiscreteScheduler
from transformers import T5TokenizerFast


def stub_torchvision() -> None:
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.utils"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.utils"].save_image = None


stub_torchvision()
from pipeline.ft_edit import FTEditFluxPipeline  # noqa: E402
from processor.ft_editing_attn_processor import (AdalayernormReplace, FluxAttentionReplace,  # noqa: E402
                                                  P2PFlux_JointAttnProcessor2_0, register_norm_control_flux)


def scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096)


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    s = job["settings"]
    transformer = job["transformer"].eval()
    tokenizer = T5TokenizerFast.from_pretrained(job["t5_tokenizer"])
    pipe = FTEditFluxPipeline(scheduler=scheduler(), vae=None, text_encoder=None, tokenizer=None, text_encoder_2=None,
                              tokenizer_2=tokenizer, transformer=transformer)
    prompts = [job["source"], job["target"]]
    blocks = len(transformer.transformer_blocks)
    controller = FluxAttentionReplace(prompts=prompts, num_steps=s["steps"], attn_ratio=s["attn_ratio"],
                                      num_att_layers=blocks)
    pipe.add_processor(after_layer=0, before_layer=36, filter_name="transformer_blocks",
                       target_processor=P2PFlux_JointAttnProcessor2_0, controller=controller)
    ada = AdalayernormReplace(prompts=prompts, num_steps=s["steps"], ly_ratio=s["ly_ratio"], tokenizer=tokenizer,
                              device="cpu", num_adanorm=blocks)
    register_norm_control_flux(pipe, ada)
    (src, src_pooled), (tgt, tgt_pooled) = job["embeddings"]
    latents_list = [x.clone() for x in job["latents_list"]]
    with torch.no_grad():
        latents, *_ = pipe.denoise(
            latents=latents_list[-1].clone(), latents_list=latents_list, source_pooled_prompt_embeds=src_pooled,
            source_prompt_embeds=src, target_pooled_prompt_embeds=tgt_pooled, target_prompt_embeds=tgt,
            text_ids=torch.zeros(src.shape[1], 3), latent_image_ids=job["img_ids"], guidance_scale=s["guidance"],
            num_inference_steps=s["steps"], device=torch.device("cpu"), joint_attention_kwargs={}, inverse=False,
            do_residual=True, skip_steps=0, fixed_point_steps=1)
    torch.save({"latent": latents.float(), "sigmas": pipe.scheduler.sigmas.float()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
