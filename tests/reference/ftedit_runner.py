"""Runs Pengchengpcx/FTEdit's code (Xu et al., CVPR 2025: ``inversion/flow_fixpoint_residual_new.py``,
``controller/attn_norm_ctrl_sd35.py``) on given weights, for the pack's parity test
(``tests/host/test_ftedit.py``). Never imported by the pack.

    PYTHONPATH=<checkout of Pengchengpcx/FTEdit>:<this folder> python ftedit_runner.py JOB OUT

JOB (``torch.save``): the diffusers ``SD3Transformer2DModel`` (the host's tiny model's weights, converted by
``tests/reference/flow_diffusers.py``), the image's latent ``x0`` (the model's space), each prompt's
embeddings as the host made them (``embeddings``: prompt -> (context, pooled)), the prompts, the settings
(``num_steps``, ``inv_cfg``, ``recov_cfg``, ``ly_ratio``, ``attn_ratio``, ``num_fixpoint_steps``,
``average_step_ranges``) and the tokenizers' folders (the host's CLIP and T5 tokenizer files). OUT gets the
inversion's latents (``all_latents``), the edit's two rows and the scheduler's sigmas.

The steps are those of ``edit_real_sd35.py``'s loop (inversion, controllers, registration, edit with the
residual). Adapters, none changing what the reference computes:
- The pipeline is a namespace holding the transformer, diffusers' ``FlowMatchEulerDiscreteScheduler`` at SD3's
  shift 3 and the tokenizers; its ``encode_prompt`` returns the host's embeddings (the text encoders are not
  part of the method).
- ``encode_latent`` (which reads the image file through the VAE) returns the job's latent, ``latent2image``
  (the VAE decode) returns the latent it is given.
- The controllers get ``device="cpu"`` where the script passes ``"cuda"``.
- Registration is handed the transformer's joint blocks but the last: theirs registers the first 37
  (``att_count < 37``) of SD3.5 Large's 38, all but the last, whose ``norm1_context`` (an
  ``AdaLayerNormContinuous``) their forward does not fit; the tiny model has fewer blocks.
"""
from __future__ import annotations

import sys
import types

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from transformers import CLIPTokenizer, T5TokenizerFast

from controller import attn_norm_ctrl_sd35
from inversion.flow_fixpoint_residual_new import Inversed_flow_fixpoint_residual


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    s = job["settings"]
    embeds = job["embeddings"]
    transformer = job["transformer"].eval()

    def encode_prompt(prompt, negative_prompt=None, **kwargs):
        context, pooled = embeds[prompt]
        neg_context, neg_pooled = embeds[negative_prompt or ""]
        return context, neg_context, pooled, neg_pooled

    pipe = types.SimpleNamespace(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), encode_prompt=encode_prompt,
        tokenizer=CLIPTokenizer.from_pretrained(job["clip_tokenizer"]),
        tokenizer_3=T5TokenizerFast.from_pretrained(job["t5_tokenizer"]),
        maybe_free_model_hooks=lambda: None, _num_timesteps=0)
    registered = types.SimpleNamespace(transformer=types.SimpleNamespace(
        transformer_blocks=torch.nn.ModuleList(list(transformer.transformer_blocks)[:-1])))

    invf = Inversed_flow_fixpoint_residual(pipe, s["num_steps"], "cpu", s["inv_cfg"], s["recov_cfg"], 0, ".")
    invf.encode_latent = lambda image: job["x0"].clone()
    invf.latent2image = lambda latents, return_type="np": latents

    src_prompt, tar_prompt = job["source"], job["target"]
    prompts = [src_prompt, tar_prompt]
    with torch.no_grad():
        attn_norm_ctrl_sd35.register_attention_control_sd35(registered, None, None)
        all_latents = invf.euler_flow_inversion(prompt=src_prompt, image=None,
                                                num_fixpoint_steps=s["num_fixpoint_steps"],
                                                average_step_ranges=tuple(s["average_step_ranges"]))
        controller_ada = attn_norm_ctrl_sd35.Adalayernorm_replace(prompts, s["num_steps"], s["ly_ratio"],
                                                                  pipe.tokenizer, pipe.tokenizer_3, device="cpu")
        controller_attn = attn_norm_ctrl_sd35.SD3attentionreplace(prompts, s["num_steps"], s["attn_ratio"])
        attn_norm_ctrl_sd35.register_attention_control_sd35(registered, controller_attn, controller_ada)
        source, edit = invf.edit_img_with_residual(prompts, all_latents, controller_ada)
    torch.save({"all_latents": torch.stack([x.float() for x in all_latents]), "source": source.float(),
                "edit": edit.float(), "sigmas": pipe.scheduler.sigmas.float()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
