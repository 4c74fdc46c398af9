"""Toy-world benchmark (issue 3): every inversion x editing combination of the pack, measured on
edits whose exact answer is known, through the real nodes and the built-in Toy World Model.

    python -m workshop.benchmarks.toyworld [--cases 60] [--steps 50] [--cfg 5] [--seed 0] [--rows SEGA,LEDITS]
    python -m workshop.benchmarks.toyworld --gates [--captions 60] [--cfg 5]

Edit cases (``toyworld.world.edit_cases``, fixed seed): object colour, object shape and
background colour in turn; each has a source caption, a target caption with the same token
count, the rendered source image, the ground-truth target image and both masks.

Per case and row, against the row's intended image (the source for a reconstruction, the
ground-truth target for an edit):
- src rec   reconstruction PSNR of the source from the row's inversion (dB);
- bg PSNR   PSNR outside the union of the source and target object masks (dB);
- success   the exact judge reads the intended background colour, object colour and shape;
- structure the judged object's centre within 6 px and size within 20% of the intended one;
- PSNR      whole-image PSNR against the intended image (dB).
The table averages them; "kept" counts the colour/shape cases whose background (>= 25 dB)
and structure survive, to show where naive regeneration loses what reconstruction keeps.

``--gates`` measures the model's quality gates instead: VAE reconstruction PSNR on held-out
scenes through stock VAEEncode/VAEDecode, and text-to-image correctness of random captions
through stock KSampler judged by the exact judge.

Rows are techniques: add one to TECHNIQUES when the pack gains an inversion or editing node.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
from workshop.headless.boot import boot
from workshop.headless.calls import call, custom_sample, encode
from workshop.toyworld import world as W
from workshop.toyworld.judge import judge

SCHEDULER = "ddim_uniform"


# ---------------------------------------------------------------------------------------------
# Techniques: (name, function(ctx) -> (LATENT samples of the output, LATENT samples of the
# reconstruction its inversion gives)). ctx holds the models, encoded prompts and settings.
# ---------------------------------------------------------------------------------------------

def case_context(host, model, clip, vae, steps: int, empty, src_img: torch.Tensor, source_caption: str,
                 target_caption: str, **extra) -> dict:
    """The ctx of one edit case that every technique reads (``extra`` adds world-specific keys,
    e.g. ``blend_words``)."""
    return {"host": host, "model": model, "clip": clip, "steps": steps, "empty": empty, "cache": {},
            "src_latent": call(host, "VAEEncode", pixels=src_img[None], vae=vae)[0],
            "src": encode(host, clip, source_caption), "tgt": encode(host, clip, target_caption),
            "src_text": source_caption, "tgt_text": target_caption, **extra}


def _ddim_inversion(ctx):
    """(inverted latent, its reconstruction with the source prompt at cfg 1), cached per case."""
    key = "ddim_inversion"
    if key not in ctx["cache"]:
        _, lat, _ = _ddim_inv(ctx)
        ctx["cache"][key] = (lat, _sample(ctx, ctx["model"], lat, ctx["src"], 1.0))
    return ctx["cache"][key]


def ddim_reconstruction(ctx):
    lat, rec = _ddim_inversion(ctx)
    return rec, rec


def ddim_naive(cfg):
    def run(ctx):
        lat, rec = _ddim_inversion(ctx)
        return _sample(ctx, ctx["model"], lat, ctx["tgt"], cfg), rec
    return run


# --- rows added by the inversion, attention and guidance techniques ---------------------------

def _ddim_inv(ctx, prompt: str = "src"):
    """DDIM Invert's outputs (INVERSION, LATENT, SIGMAS) with ``ctx[prompt]`` ("src", or "empty"
    for Plug-and-Play) at cfg 1, cached per case."""
    key = ("ddim_inv", prompt)
    if key not in ctx["cache"]:
        ctx["cache"][key] = call(ctx["host"], "InvertEditDDIMInvert", model=ctx["model"], latent=ctx["src_latent"],
                                 positive=ctx[prompt], steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=0, cfg=1.0)
    return ctx["cache"][key]


def refine_inversion(ctx, node: str, cfg: float, prompt: str = "src"):
    """The DDIM inversion of ``ctx[prompt]`` refined by ``node`` (Negative-Prompt, Null-Text
    (optimised for ``cfg``: 10 inner steps, lr 0.01, early stop), Direct), cached per case."""
    key = ("refined", node, cfg if node == "InvertEditNullTextOptimize" else None, prompt)
    if key not in ctx["cache"]:
        inv = _ddim_inv(ctx, prompt)[0]
        kw = {}
        if node == "InvertEditNegativePromptInversion":
            kw = {"positive": ctx[prompt]}
        elif node == "InvertEditNullTextOptimize":
            kw = dict(positive=ctx[prompt], model=ctx["model"], negative=ctx["empty"], cfg=cfg, inner_steps=10,
                      learning_rate=0.01, early_stop=True)
        ctx["cache"][key] = call(ctx["host"], node, inversion=inv, **kw)[0]
    return ctx["cache"][key]


def _sample(ctx, model, latent, positive, cfg):
    return call(ctx["host"], "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=ctx["steps"],
                cfg=cfg, sampler_name="ddim", scheduler=SCHEDULER, positive=positive, negative=ctx["empty"],
                latent_image=latent, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def refined_naive(node, cfg):
    """An inversion refined by ``node`` (Negative-Prompt, Null-Text), applied; the edit is the
    target prompt at ``cfg``, the reconstruction the source prompt at ``cfg``."""
    def run(ctx):
        lat = _ddim_inv(ctx)[1]
        m = call(ctx["host"], "InvertEditApplyInversion", model=ctx["model"], inversion=refine_inversion(ctx, node, cfg))[0]
        return _sample(ctx, m, lat, ctx["tgt"], cfg), _sample(ctx, m, lat, ctx["src"], cfg)
    return run


def blend_words(source: str, target: str) -> tuple[str, str]:
    """The edited object's noun in each caption (PIE-Bench's "blended word"): the shape for an
    object's colour or shape edit, "background" for a background edit."""
    src, tgt = source.split(), target.split()
    i = next(i for i, (a, b) in enumerate(zip(src, tgt)) if a != b)
    if src[i + 1:i + 2] == ["background"]:
        return "background", "background"
    if i + 1 < len(src) and src[i + 1] == tgt[i + 1] and src[i + 1] != "on":   # a colour before its shape
        return src[i + 1], tgt[i + 1]
    return src[i], tgt[i]


def diffedit_mask(ctx, threshold: float) -> torch.Tensor:
    """DiffEdit Mask of source -> target (strength 0.5, 10 noises, seed 0) cut at ``threshold``
    (paper: 0.5), cached per case: a MASK ``[1, H, W]`` at image resolution."""
    key = ("diffedit", threshold)
    if key not in ctx["cache"]:
        ctx["cache"][key] = call(ctx["host"], "InvertEditDiffEditMask", model=ctx["model"], latent=ctx["src_latent"],
                                 source=ctx["src"], target=ctx["tgt"], strength=0.5, samples=10, threshold=threshold,
                                 seed=0)[0]
    return ctx["cache"][key]


def pair_edit(node, cfg, blend=False, local_blend=False, inversion="InvertEditDirectInversion", inversion_prompt="src",
              mask_threshold=0.25, **kw):
    """DDIM inversion (of ``inversion_prompt``: "src", or "empty" for Plug-and-Play) + the
    refinement ``inversion`` (Direct Inversion keeps the source row exact; Negative-Prompt or
    Null-Text; None: plain DDIM, no correction) + a pair editor (+ Latent Blend on a mask:
    ``blend=True`` DiffEdit's at ``mask_threshold``, or a function ``ctx -> MASK``; or Attention
    Inject's own local blend on the edited object's noun, ``ctx["blend_words"]`` when the world
    gives them, else ``blend_words`` of the captions): one sampler run; row 1 is the edit, row 0
    the reconstruction. The blend mask used is left in ``ctx["mask_used"]``."""
    def run(ctx):
        host = ctx["host"]
        lat = _ddim_inv(ctx, inversion_prompt)[1]
        extra = {"local_blend": bool(local_blend)} if node == "InvertEditAttentionInject" else {}
        if local_blend:
            extra["blend_source_words"], extra["blend_target_words"] = (
                ctx.get("blend_words") or blend_words(ctx["src_text"], ctx["tgt_text"]))
        source_text = ctx["src_text"] if inversion_prompt == "src" else ""
        m, cond, pair = call(host, node, model=ctx["model"], clip=ctx["clip"], latent=lat, source_prompt=source_text,
                             target_prompt=ctx["tgt_text"], **kw, **extra)
        if blend:
            mask = blend(ctx) if callable(blend) else diffedit_mask(ctx, mask_threshold)
            ctx["mask_used"] = mask
            m = call(host, "InvertEditLatentBlend", model=m, latent=pair, mask=mask, start=0.0, end=1.0)[0]
        if inversion is not None:
            m = call(host, "InvertEditApplyInversion", model=m,
                     inversion=refine_inversion(ctx, inversion, cfg, inversion_prompt))[0]
        out = _sample(ctx, m, pair, cond, cfg)
        return out[1:], out[:1]
    return run


def own_sampler_edit(invert_node, sampler_node, cfg_inv, cfg_edit, start, **kw):
    """EDICT or edit-friendly DDPM: inversion at ``cfg_inv``, edit with the target prompt at
    ``cfg_edit`` through the inversion's own sampler; reconstruction with the source at ``cfg_inv``."""
    def run(ctx):
        host = ctx["host"]
        inv, lat, sigmas = call(host, invert_node, model=ctx["model"], latent=ctx["src_latent"], positive=ctx["src"],
                                negative=ctx["empty"], steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=start,
                                cfg=cfg_inv, **kw)
        sampler = call(host, sampler_node, inversion=inv)[0]
        return (custom_sample(host, ctx["model"], ctx["tgt"], ctx["empty"], cfg_edit, sampler, sigmas, lat),
                custom_sample(host, ctx["model"], ctx["src"], ctx["empty"], cfg_inv, sampler, sigmas, lat))
    return run


def _concept_edit(ctx, guider_for, inversion_prompt: str, cfg_inv: float):
    """Edit-friendly DDPM inversion (LEDITS++'s 15% skip) with ``inversion_prompt`` ("src" or
    "empty") at ``cfg_inv``, then the guider ``guider_for(ctx)`` through its sampler; the
    reconstruction is the inversion prompt at ``cfg_inv``."""
    host = ctx["host"]
    inv, lat, sigmas = call(host, "InvertEditDDPMInvert", model=ctx["model"], latent=ctx["src_latent"],
                            positive=ctx[inversion_prompt], negative=ctx["empty"], steps=ctx["steps"], scheduler=SCHEDULER,
                            start_at_step=max(1, int(0.15 * ctx["steps"])), cfg=cfg_inv, seed=0)
    sampler = call(host, "InvertEditDDPMSampler", inversion=inv)[0]
    noise = call(host, "DisableNoise")[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider_for(ctx), sampler=sampler, sigmas=sigmas,
               latent_image=lat)[0]["samples"]
    plain = call(host, "CFGGuider", model=ctx["model"], positive=ctx[inversion_prompt], negative=ctx["empty"],
                 cfg=cfg_inv)[0]
    rec = call(host, "SamplerCustomAdvanced", noise=noise, guider=plain, sampler=sampler, sigmas=sigmas,
               latent_image=lat)[0]["samples"]
    return out, rec


def sega_captions(scale=5.0, threshold=0.9, cfg_inv=3.5):
    """SEGA towards the target caption and away from the source's (the toy model knows only
    whole captions), on the source prompt at ``cfg_inv``."""
    def guider(ctx):
        host, chain = ctx["host"], None
        for cond, direction in ((ctx["tgt"], "add"), (ctx["src"], "remove")):
            chain = call(host, "InvertEditSEGAConcept", conditioning=cond, direction=direction, scale=scale, warmup=0,
                         cooldown=0, threshold=threshold, weight=1.0, concepts=chain)[0]
        return call(host, "InvertEditSEGAGuidance", model=ctx["model"], positive=ctx["src"], negative=ctx["empty"],
                    cfg=cfg_inv, concepts=chain, momentum_scale=0.1, momentum_beta=0.4)[0]
    return lambda ctx: _concept_edit(ctx, guider, "src", cfg_inv)


def ledits_captions(scale=5.0, threshold=0.3, mask="intersect"):
    """LEDITS++ on an empty-prompt inversion: the target caption added, the source's removed."""
    def guider(ctx):
        host, chain = ctx["host"], None
        for text, direction in ((ctx["tgt_text"], "add"), (ctx["src_text"], "remove")):
            chain = call(host, "InvertEditLEDITSConcept", clip=ctx["clip"], text=text, direction=direction, scale=scale,
                         warmup=0, cooldown=0, threshold=threshold, weight=1.0, concepts=chain)[0]
        return call(host, "InvertEditLEDITSGuidance", model=ctx["model"], negative=ctx["empty"], concepts=chain,
                    mask=mask)[0]
    return lambda ctx: _concept_edit(ctx, guider, "empty", 1.0)


def direction_sentences(source: str, target: str, n: int = 6) -> tuple[str, str]:
    """pix2pix-zero's sentence lists for a toy edit: ``n`` captions with the source's value of the
    edited field (object colour, shape or background colour) and the same captions with the
    target's, the other fields varied (object and background colours always differ)."""
    src, tgt = W.parse_caption(source), W.parse_caption(target)
    field = next(i for i in range(3) if src[i] != tgt[i])
    contexts = [(c, s, b) for c in W.COLOURS for s in W.SHAPES for b in W.COLOURS]
    random.Random(0).shuffle(contexts)
    lines_s, lines_t = [], []
    for context in contexts:
        pair = [tuple(v if i == field else context[i] for i in range(3)) for v in (src[field], tgt[field])]
        line = W.caption(*pair[0])
        if any(c == b for c, _, b in pair) or line in lines_s:
            continue
        lines_s.append(line)
        lines_t.append(W.caption(*pair[1]))
        if len(lines_s) == n:
            break
    return "\n".join(lines_s), "\n".join(lines_t)


def pix2pix_zero(cfg: float, amount: float = 0.1, lambdas: tuple[float, float] = (20.0, 20.0)):
    """Pix2Pix-Zero Invert (paper defaults: lambdas 20, 5 rounds of 5 rolls; the source caption, cfg 1),
    Edit Direction from ``direction_sentences`` and Cross-Attention Guidance (``amount``) with the
    source caption as the negative at ``cfg`` (the authors' real-image script: negative = caption,
    cfg 5): one SamplerCustomAdvanced run; row 1 is the edit, row 0 the reconstruction. Cost: N
    UNet calls to invert; 3 calls of 2 rows and one backward pass of 2 rows a step to edit (a
    stock pair run: 1 call of 4 rows). ``lambdas`` (auto-correlation, KL): (0, 0) inverts as DDIM does."""
    def run(ctx):
        host = ctx["host"]
        key = ("pix2pix_zero_inversion", lambdas)
        if key not in ctx["cache"]:
            ctx["cache"][key] = call(host, "InvertEditPix2PixZeroInvert", model=ctx["model"], latent=ctx["src_latent"],
                                     positive=ctx["src"], steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=0,
                                     cfg=1.0, lambda_auto_corr=lambdas[0], lambda_kl=lambdas[1], reg_steps=5,
                                     auto_corr_rolls=5, seed=0)
        _, lat, sigmas = ctx["cache"][key]
        source, target = direction_sentences(ctx["src_text"], ctx["tgt_text"])
        edited = call(host, "InvertEditEditDirection", conditioning=ctx["src"], source_sentences=source,
                      target_sentences=target, clip=ctx["clip"])[0]
        guider, pair = call(host, "InvertEditCrossAttentionGuidance", model=ctx["model"], positive=ctx["src"],
                            target=edited, negative=ctx["src"], latent=lat, cfg=cfg, guidance_amount=amount)
        out = call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                   sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas,
                   latent_image=pair)[0]["samples"]
        return out[1:], out[:1]
    return run


def sdedit(denoise: float, cfg: float):
    """SDEdit (Meng et al.): the stock KSampler with ``denoise`` below 1 noises the source latent to
    t0 = ``denoise`` (seed 0) and denoises it with the target prompt at ``cfg``: no inversion. Its
    reconstruction is the same run with the source prompt (which does not give the source back)."""
    def run(ctx):
        def ksampler(prompt: str):
            return call(ctx["host"], "KSampler", model=ctx["model"], seed=0, steps=ctx["steps"], cfg=cfg,
                        sampler_name="ddim", scheduler=SCHEDULER, positive=ctx[prompt], negative=ctx["empty"],
                        latent_image=ctx["src_latent"], denoise=denoise)[0]["samples"]
        return ksampler("tgt"), ksampler("src")
    return run


def guided_pair(editor: str, guider: str, cfg: float, inversion: str | None, editor_kw: dict, guider_kw: dict):
    """A pair editor (``editor``: Attention Inject, MasaCtrl) on the DDIM inversion's latent, then the
    GUIDER node ``guider`` (Proximal Guidance, Noise Map Guidance) on its MODEL and pair with the
    DDIM inversion refined by ``inversion`` (Negative-Prompt for ProxNPI; None: the DDIM inversion
    itself, as NMG), sampled once by SamplerCustomAdvanced (ddim, the inversion's sigmas); row 1 is
    the edit, row 0 the reconstruction."""
    def run(ctx):
        host = ctx["host"]
        inv, lat, sigmas = _ddim_inv(ctx)
        if inversion is not None:
            inv = refine_inversion(ctx, inversion, cfg)
        m, cond, pair = call(host, editor, model=ctx["model"], clip=ctx["clip"], latent=lat,
                             source_prompt=ctx["src_text"], target_prompt=ctx["tgt_text"], **editor_kw)
        g = call(host, guider, model=m, positive=cond, negative=ctx["empty"], inversion=inv, cfg=cfg, **guider_kw)[0]
        out = call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=g,
                   sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas,
                   latent_image=pair)[0]["samples"]
        return out[1:], out[:1]
    return run


PROX_NPI = dict(prox="l0", quantile=0.7, quantile_over="pair", start_step=0, pull="inversion", recon_lr=1.0,
                recon_t=400.0, dilate_mask=1)   # the reference README's ProxNPI recipe
P2P_PIE = dict(mode="replace", reweight="", cross_replace=0.4, self_replace=0.6, local_blend=False)
NMG_TOY = dict(noise_map_scale=10.0, grad_scale=5000.0 * 16 * 16 / (64 * 64), loss="l1")   # paper's, per latent element


def imagic(cfg: float, alpha: float = 0.7, embedding_steps: int = 100, embedding_lr: float = 0.01,
           fine_tune_steps: int = 150, fine_tune_lr: float = 0.01, rank: int = 8):
    """Imagic (Kawar et al.): Imagic Optimize Embedding from the target caption, Imagic Fine-Tune (a
    LoRA of ``rank``), then the stock KSampler from noise (seed 0, ctx's steps, ``cfg``, empty
    negative) on the fine-tuned model with Imagic Interpolate's ``alpha``; the reconstruction is
    alpha 0 (the optimised embedding). No inversion: the image is learnt. Cost: embedding_steps +
    fine_tune_steps UNet forward and backward passes, then 2 rows a sampling step per image."""
    def run(ctx):
        host = ctx["host"]
        optimized, target, _ = call(host, "InvertEditImagicOptimizeEmbedding", model=ctx["model"],
                                    latent=ctx["src_latent"], target=ctx["tgt"], steps=embedding_steps,
                                    learning_rate=embedding_lr, seed=0)
        tuned = call(host, "InvertEditImagicFineTune", model=ctx["model"], latent=ctx["src_latent"], optimized=optimized,
                     steps=fine_tune_steps, learning_rate=fine_tune_lr, rank=rank, seed=0)[0]
        noise = {"samples": torch.zeros_like(ctx["src_latent"]["samples"])}

        def generate(a: float):
            positive = call(host, "InvertEditImagicInterpolate", target=target, optimized=optimized, alpha=a)[0]
            return call(host, "KSampler", model=tuned, seed=0, steps=ctx["steps"], cfg=cfg, sampler_name="ddim",
                        scheduler=SCHEDULER, positive=positive, negative=ctx["empty"], latent_image=noise,
                        denoise=1.0)[0]["samples"]
        return generate(alpha), generate(0.0)
    return run


def techniques(cfg: float):
    """(row name, function, is_edit). Later techniques add their rows here."""
    return [
        ("DDIM inversion: reconstruction (source prompt, cfg 1)", ddim_reconstruction, False),
        ("DDIM inversion + naive regeneration (target prompt, cfg 1)", ddim_naive(1.0), True),
        (f"DDIM inversion + naive regeneration (target prompt, cfg {cfg:g})", ddim_naive(cfg), True),
        # SDEdit, the baseline without inversion: the paper's typical t0 for real images is 0.5-0.6
        *[(f"SDEdit (denoise {d:g}): stock KSampler, target prompt, cfg {cfg:g}, seed 0", sdedit(d, cfg), True)
          for d in (0.4, 0.6, 0.8)],
        (f"Negative-prompt inversion + naive regeneration (cfg {cfg:g})",
         refined_naive("InvertEditNegativePromptInversion", cfg), True),
        (f"Null-text inversion + naive regeneration (cfg {cfg:g})", refined_naive("InvertEditNullTextOptimize", cfg), True),
        (f"Direct inversion + Prompt-to-Prompt replace (paper defaults: cross 0.8, self 0.4; cfg {cfg:g})",
         pair_edit("InvertEditAttentionInject", cfg, mode="replace", reweight="", cross_replace=0.8, self_replace=0.4), True),
        (f"Direct inversion + Prompt-to-Prompt replace (PIE-Bench: cross 0.4, self 0.6; cfg {cfg:g})",
         pair_edit("InvertEditAttentionInject", cfg, mode="replace", reweight="", cross_replace=0.4, self_replace=0.6), True),
        (f"Direct inversion + Prompt-to-Prompt replace + local blend (PIE-Bench settings, object noun, "
         f"threshold 0.3, start 0.2; cfg {cfg:g})",
         pair_edit("InvertEditAttentionInject", cfg, local_blend=True, mode="replace", reweight="", cross_replace=0.4,
                   self_replace=0.6), True),
        # tuned by workshop/benchmarks/p2p_sweep.py on the colour/shape swaps (issue 5): no shape-swap loss
        (f"Direct inversion + Prompt-to-Prompt replace (tuned: cross 0.1, self 0.8; cfg {cfg:g})",
         pair_edit("InvertEditAttentionInject", cfg, mode="replace", reweight="", cross_replace=0.1, self_replace=0.8), True),
        (f"Direct inversion + Prompt-to-Prompt + Latent Blend (DiffEdit mask, cfg {cfg:g})",
         pair_edit("InvertEditAttentionInject", cfg, blend=True, mode="replace", reweight="", cross_replace=0.8,
                   self_replace=0.4), True),
        (f"Direct inversion + MasaCtrl (step 4, layer 6, cfg {cfg:g})",
         pair_edit("InvertEditMasaCtrl", cfg, start_step=4, start_layer=6), True),
        (f"EDICT (cfg {cfg:g}) + target prompt", own_sampler_edit("InvertEditEDICTInvert", "InvertEditEDICTSampler", cfg, cfg,
                                                                 0, mixing=0.93), True),
        ("Edit-friendly DDPM (cfg 3.5) + target prompt (cfg 15)",
         own_sampler_edit("InvertEditDDPMInvert", "InvertEditDDPMSampler", 3.5, 15.0, 0, seed=0), True),
        (f"Pix2Pix-Zero inversion + edit direction (6 caption pairs) + cross-attention guidance 0.1 (paper; negative "
         f"= source caption, cfg {cfg:g}; 3 UNet calls + 1 backward a step)", pix2pix_zero(cfg), True),
        # 0.1 moves nothing measurable on the toy model; of 3, 10 and 30, 10 kept the most structure (6 cases)
        (f"Pix2Pix-Zero inversion + edit direction + cross-attention guidance 10 (tuned for the toy model; cfg {cfg:g})",
         pix2pix_zero(cfg, amount=10.0), True),
        # ProxEdit and NMG (issue 14). Cost in UNet rows a step: ProxNPI as NPI + P2P, 4; NMG 4 plus one
        # unconditional pass of 2 rows with its backward (about 3 forwards' worth): about 10.
        (f"Negative-prompt inversion + Prompt-to-Prompt (PIE-Bench) + Proximal Guidance (ProxNPI: l0, quantile "
         f"0.7, inversion pull below t 400; cfg {cfg:g}; 4 UNet rows a step)",
         guided_pair("InvertEditAttentionInject", "InvertEditProximalGuidance", cfg, "InvertEditNegativePromptInversion",
                     P2P_PIE, PROX_NPI), True),
        (f"Negative-prompt inversion + MasaCtrl (step 4, layer 6) + Proximal Guidance (ProxMasaCtrl: l0, quantile "
         f"0.6 over the target, no pull; cfg {cfg:g}; 4 UNet rows a step)",
         guided_pair("InvertEditMasaCtrl", "InvertEditProximalGuidance", cfg, "InvertEditNegativePromptInversion",
                     dict(start_step=4, start_layer=6), dict(PROX_NPI, quantile=0.6, quantile_over="target",
                                                             pull="none")), True),
        (f"DDIM inversion + Prompt-to-Prompt (PIE-Bench) + Noise Map Guidance (scale 10, L1, grad scale 5000 per "
         f"64x64 latent = 312.5 here; cfg {cfg:g}; ~10 UNet rows a step with the backward)",
         guided_pair("InvertEditAttentionInject", "InvertEditNoiseMapGuidance", cfg, None, P2P_PIE, NMG_TOY), True),
        (f"Imagic (embedding 100 steps lr 0.01, LoRA rank 8 150 steps lr 0.01, alpha 0.7; from noise, cfg {cfg:g}; "
         f"250 UNet forward+backward passes, then 2 rows a step)", imagic(cfg), True),
    ] + concept_rows()


def concept_rows():
    """The concept-guidance rows (SEGA, LEDITS++ on edit-friendly DDPM), shared by both worlds."""
    return [
        ("Edit-friendly DDPM + SEGA (add target, remove source caption; threshold 0.9)", sega_captions(), True),
        ("Edit-friendly DDPM + SEGA (add target, remove source caption; threshold 0.5)", sega_captions(threshold=0.5),
         True),
        ("Edit-friendly DDPM (empty prompt) + LEDITS++ (add target, remove source caption; intersect, threshold 0.3)",
         ledits_captions(), True),
        ("Edit-friendly DDPM (empty prompt) + LEDITS++ (add target, remove source caption; noise mask, threshold 0.5)",
         ledits_captions(threshold=0.5, mask="noise"), True),
    ]


# ---------------------------------------------------------------------------------------------

def decode(host, vae, samples) -> torch.Tensor:
    return call(host, "VAEDecode", vae=vae, samples={"samples": samples})[0][0]


def metrics(out_img, src_img, intended_scene, intended_img, union_mask, rec_img):
    r = judge(out_img)
    return {
        "src_rec": W.psnr(rec_img, src_img),
        "bg": W.psnr(out_img, intended_img, ~union_mask),
        "bg_vs_source": W.psnr(out_img, src_img, ~union_mask),
        "success": float(r.matches(intended_scene)),
        "structure": float(r.same_structure(intended_scene)),
        "psnr": W.psnr(out_img, intended_img),
    }


def finite_mean(vals) -> float:
    """Mean of the finite values (a PSNR of identical images is inf); inf when there are none."""
    finite = [v for v in vals if not math.isinf(v)]
    return statistics.fmean(finite) if finite else math.inf


def fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1f}"


def load_models(host):
    toy = host.pack.demo.toy_model
    return toy.load_toy_model(toy.WORLD_1)


def benchmark(host, args) -> str:
    model, clip, vae = load_models(host)
    cases = W.edit_cases(args.cases, seed=args.seed)
    rows = techniques(args.cfg)
    wanted = [w.strip() for w in args.rows.split(",") if w.strip()]
    if wanted:
        rows = rows[:1] + [r for r in rows[1:] if any(w in r[0] for w in wanted)]
    per_row = {name: [] for name, _, _ in rows}
    kinds = []
    empty = encode(host, clip, "")
    vae_ceiling = []
    t0 = time.time()
    for i, case in enumerate(cases):
        src_img, src_mask = W.render(case.source)
        tgt_img, tgt_mask = W.render(case.target)
        union = src_mask | tgt_mask
        ctx = case_context(host, model, clip, vae, args.steps, empty, src_img, case.source_caption, case.target_caption)
        vae_ceiling.append(W.psnr(decode(host, vae, ctx["src_latent"]["samples"]), src_img))
        kinds.append(case.kind)
        for name, fn, is_edit in rows:
            out, rec = fn(ctx)
            out_img, rec_img = decode(host, vae, out), decode(host, vae, rec)
            scene, img = (case.target, tgt_img) if is_edit else (case.source, src_img)
            per_row[name].append(metrics(out_img, src_img, scene, img, union, rec_img))
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(cases)} cases ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)

    mean = finite_mean
    lines = [
        f"Toy world benchmark: {len(cases)} edit cases (seed {args.seed}; "
        + ", ".join(f"{k} {kinds.count(k)}" for k in W.EDIT_KINDS)
        + f"), DDIM {args.steps} steps ({SCHEDULER}), Toy World Model; VAE ceiling {mean(vae_ceiling):.1f} dB.",
        "",
        "| technique | src rec PSNR | bg PSNR | success | colour / shape / bg success | structure kept | PSNR vs GT | kept (colour+shape cases) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _, _ in rows:
        m = per_row[name]
        by_kind = []
        for k in W.EDIT_KINDS:
            sel = [x["success"] for x, kk in zip(m, kinds) if kk == k]
            by_kind.append(f"{100 * statistics.fmean(sel):.0f}%")
        kept = [bool(x["structure"]) and x["bg_vs_source"] >= 25 for x, kk in zip(m, kinds) if kk != "background"]
        lines.append(
            f"| {name} | {fmt(mean([x['src_rec'] for x in m]))} | {fmt(mean([x['bg'] for x in m]))} | "
            f"{100 * statistics.fmean(x['success'] for x in m):.0f}% | {' / '.join(by_kind)} | "
            f"{100 * statistics.fmean(x['structure'] for x in m):.0f}% | {fmt(mean([x['psnr'] for x in m]))} | "
            f"{sum(kept)}/{len(kept)} |")
    # discrimination: cases where reconstruction keeps background + structure and an edit row loses them
    rec_m = per_row[rows[0][0]]
    for name, _, is_edit in rows:
        if not is_edit:
            continue
        m = per_row[name]
        lost = [i for i, kk in enumerate(kinds) if kk != "background"
                and rec_m[i]["structure"] and rec_m[i]["bg_vs_source"] >= 25
                and not (m[i]["structure"] and m[i]["bg_vs_source"] >= 25)]
        n = sum(1 for kk in kinds if kk != "background")
        lines.append("")
        lines.append(f"- {name}: loses background or structure in {len(lost)}/{n} colour/shape cases "
                     f"({100 * len(lost) / n:.0f}%) where the reconstruction keeps both.")
    lines.append(f"\n({time.time() - t0:.0f}s on {torch.get_num_threads()} thread(s))")
    return "\n".join(lines)


def gates(host, args) -> str:
    model, clip, vae = load_models(host)
    rng = random.Random(10_000)  # the held-out scenes of workshop/toyworld/train.py
    held = [W.random_scene(rng) for _ in range(256)]
    ps = []
    for i in range(0, len(held), 32):
        imgs = W.render_batch(held[i:i + 32])
        lat = call(host, "VAEEncode", pixels=imgs, vae=vae)[0]
        rec = call(host, "VAEDecode", vae=vae, samples=lat)[0]
        ps += [W.psnr(rec[j], imgs[j]) for j in range(len(imgs))]
    s = lat["samples"] * 0.18215
    lines = [f"VAE held-out reconstruction PSNR (stock VAEEncode/VAEDecode, {len(held)} scenes): "
             f"{statistics.fmean(ps):.2f} dB (min {min(ps):.2f}); scaled latent mean {s.mean():.3f} std {s.std():.3f}"]
    rng = random.Random(args.seed + 20_000)
    caps = W.all_captions()
    empty = encode(host, clip, "")
    chosen = [rng.choice(caps) for _ in range(args.captions)]
    for cfg in args.gate_cfgs:
        ok_cs = ok_all = ok_bg = 0
        t0 = time.time()
        for i, c in enumerate(chosen):
            colour, shape, bg = W.parse_caption(c)
            latent = call(host, "EmptyLatentImage", width=W.SIZE, height=W.SIZE, batch_size=1)[0]
            out = call(host, "KSampler", model=model, seed=i, steps=args.gate_steps, cfg=cfg, sampler_name="ddim",
                       scheduler=SCHEDULER, positive=encode(host, clip, c), negative=empty,
                       latent_image=latent, denoise=1.0)[0]
            r = judge(decode(host, vae, out["samples"]))
            cs = r.colour == colour and r.shape == shape
            ok_cs += cs
            ok_bg += r.background == bg
            ok_all += cs and r.background == bg
        n = args.captions
        lines.append(f"Text-to-image (stock KSampler, ddim {args.gate_steps} steps, cfg {cfg:g}, {n} random captions, "
                     f"seeds 0..{n - 1}): colour+shape {100 * ok_cs / n:.0f}%, background {100 * ok_bg / n:.0f}%, "
                     f"all three {100 * ok_all / n:.0f}% ({time.time() - t0:.0f}s)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=60)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--cfg", type=float, default=5.0, help="guidance of the guided naive-regeneration row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gates", action="store_true", help="measure the model's quality gates instead")
    p.add_argument("--captions", type=int, default=60)
    p.add_argument("--gate-steps", type=int, default=30)
    p.add_argument("--gate-cfgs", type=lambda s: [float(x) for x in s.split(",")], default=[5.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words "
                                              "(and the reconstruction row the others are compared with)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    import tempfile
    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="toyworld-bench-")))
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    print(gates(host, args) if args.gates else benchmark(host, args))


if __name__ == "__main__":
    main()
