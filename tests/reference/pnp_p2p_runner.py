"""Runs cure-lab/PnPInversion's Prompt-to-Prompt code (the code behind the PIE-Bench table) on
given weights, for the pack's parity test. Never imported by the pack.

    PYTHONPATH=<PnPInversion checkout>:<this folder> python pnp_p2p_runner.py JOB OUT

JOB (``torch.save``): the diffusers/transformers UNet, text encoder and VAE, the tokenizer folder, the source latent (diffusers scale), the prompts and the cases.
OUT gets each case's final latents (both rows) from the reference's own functions:
``NullInversion`` (DDIM with 0 inner steps; null-text), ``NegativePromptInversion``,
``DirectInversion``, the controllers as ``make_controller`` wires them, ``p2p_guidance_forward`` and
``direct_inversion_p2p_guidance_forward``, with the reference's ``DDIMSchedulerDev``.

Two adapters, neither changing what the reference computes:
- The reference patches attention modules whose class is named ``CrossAttention`` and calls
  them as diffusers 0.10 did (``context``, ``mask``, ``reshape_heads_to_batch_dim``); today's
  diffusers names the class ``Attention`` and passes ``encoder_hidden_states``. Each module is
  given a subclass carrying the old name and methods.
- The scheduler is configured like the host's ``ddim_uniform`` (``steps_offset=1``,
  ``set_alpha_to_one=True``), which the pack's DDIM Invert uses; the reference's editor class
  builds it with ``set_alpha_to_one=False`` (see the README on that schedule).
"""
from __future__ import annotations

import sys

import torch
from diffusers.models.attention_processor import Attention
from transformers import CLIPTokenizer

from models.p2p.attention_control import (AttentionRefine, AttentionReplace, AttentionReweight, LocalBlend,
                                           get_equalizer)
from models.p2p.inversion import DirectInversion, NegativePromptInversion, NullInversion
from models.p2p.p2p_guidance_forward import direct_inversion_p2p_guidance_forward, p2p_guidance_forward
from models.p2p.scheduler_dev import DDIMSchedulerDev


class CrossAttention(Attention):
    """diffusers' Attention under diffusers 0.10's class name and method names."""

    def reshape_heads_to_batch_dim(self, tensor):
        return self.head_to_batch_dim(tensor)

    def reshape_batch_dim_to_heads(self, tensor):
        return self.batch_to_head_dim(tensor)

    def __call__(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        if "forward" in self.__dict__:   # the reference's own forward, set by register_attention_control
            return self.forward(hidden_states, context=encoder_hidden_states, mask=attention_mask)
        return super().__call__(hidden_states, encoder_hidden_states=encoder_hidden_states,
                                attention_mask=attention_mask, **kwargs)


class Pipe:
    """What the reference reads of a StableDiffusionPipeline."""

    def __init__(self, job: dict):
        self.device = torch.device("cpu")
        self.unet, self.text_encoder, self.vae = job["unet"], job["text_encoder"], job["vae"]
        for model in (self.unet, self.text_encoder, self.vae):
            model.eval().requires_grad_(False)
        for module in self.unet.modules():
            if type(module) is Attention:
                module.__class__ = CrossAttention
        self.tokenizer = CLIPTokenizer.from_pretrained(job["tokenizer"], model_max_length=77)
        self.scheduler = DDIMSchedulerDev(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                          clip_sample=False, set_alpha_to_one=True, steps_offset=1)
        self.scheduler.set_timesteps(job["steps"])


def invert(pipe: Pipe, job: dict, method: str):
    """(x_T, uncond embeddings per step or None, Direct's offsets or None)."""
    z0, source, steps, cfg = job["latent"], job["source"], job["steps"], job["cfg"]
    if method in ("ddim", "null-text"):
        inner = 0 if method == "ddim" else job["inner_steps"]
        _, _, x_stars, nulls = NullInversion(pipe, steps).invert(image_gt=z0, prompt=source, guidance_scale=cfg,
                                                                 num_inner_steps=inner)
        return x_stars[-1], nulls, None
    if method == "negative-prompt":
        _, _, x_stars, nulls = NegativePromptInversion(pipe, steps).invert(image_gt=z0, prompt=source)
        return x_stars[-1], nulls, None
    return None, None, None   # direct: inverted per target (its offsets depend on both prompts)


def make_controller_on_cpu(pipe: Pipe, prompts: list[str], case: dict, steps: int):
    """The reference's ``make_controller``, wired the same way but with ``device="cpu"`` passed to
    every controller (``make_controller`` leaves the edit controllers on their default, "cuda")."""
    cross = {"default_": case["cross"]}
    blend = None if case.get("blend") is None else LocalBlend(prompts, case["blend"], tokenizer=pipe.tokenizer,
                                                              device="cpu", num_ddim_steps=steps,
                                                              th=(case["threshold"],) * 2,
                                                              substruct_words=case.get("subtract"))
    edit = AttentionReplace if case["mode"] == "replace" else AttentionRefine
    controller = edit(prompts, steps, cross_replace_steps=cross, self_replace_steps=case["self"], local_blend=blend,
                      tokenizer=pipe.tokenizer, device="cpu")
    if case.get("eq") is not None:
        eq = get_equalizer(prompts[1], case["eq"]["words"], case["eq"]["values"], tokenizer=pipe.tokenizer)
        controller = AttentionReweight(prompts, steps, cross_replace_steps=cross, self_replace_steps=case["self"],
                                       equalizer=eq, local_blend=blend, controller=controller, device="cpu")
    return controller


def run_case(pipe: Pipe, job: dict, case: dict, inverted) -> torch.Tensor:
    prompts = [job["source"], case["target"]]
    steps, cfg = job["steps"], job["cfg"]
    controller = make_controller_on_cpu(pipe, prompts, case, steps)
    if case["inversion"] == "direct":
        _, _, x_stars, offsets = DirectInversion(pipe, steps).invert(image_gt=job["latent"], prompt=prompts,
                                                                     guidance_scale=cfg)
        latents, _ = direct_inversion_p2p_guidance_forward(model=pipe, prompt=prompts, controller=controller,
                                                           latent=x_stars[-1], num_inference_steps=steps,
                                                           guidance_scale=cfg, noise_loss_list=offsets)
        return latents
    x_t, nulls, _ = inverted
    latents, _ = p2p_guidance_forward(model=pipe, prompt=prompts, controller=controller, latent=x_t,
                                      num_inference_steps=steps, guidance_scale=cfg, uncond_embeddings=nulls)
    return latents


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    pipe = Pipe(job)
    inverted, results = {}, {}
    for name, case in job["cases"].items():
        method = case["inversion"]
        if method not in inverted:
            inverted[method] = invert(pipe, job, method)
        with torch.no_grad():
            results[name] = run_case(pipe, job, case, inverted[method]).detach().clone()
    torch.save(results, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
