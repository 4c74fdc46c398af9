"""FTEdit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, PHOTO_SOURCE, PHOTO_TARGET, SCHEDULES, SD3, TOY_FLOW, Family, clip_of,
                                     flow_front, flow_model, setup_note, strip, vae_of)
from . import ROW

INVERT = ROW.settings_of("InvertEditFTEditInvert")
EDIT = ROW.settings_of("InvertEditFTEdit")
CFG = 2.0   # the authors' real-image command: --recov_cfg 2 (and --inv_cfg 1: the inversion without guidance)
FLUX_STEPS = 25   # Justin900429/RF-Image-Editing's FTEdit notebook (Flux.1 dev): 25 steps, guidance 2


def _ftedit(family: Family) -> dict:
    """FTEdit Invert then FTEdit with the authors' real-image settings (README: 30 steps, inv_cfg 1, recov_cfg 2,
    ly_ratio 1.0, attn_ratio 0.15; 2 fixed-point iterations averaged); Flux: the port's 25 steps and guidance 2 (its
    inversion, whose 3 "fixed-point" evaluations are all at one point, is the authors' here)."""
    flux = family is FLUX
    steps = FLUX_STEPS if flux else INVERT["steps"]
    scale = f"guidance {EDIT['guidance']:g} (the port's)" if flux else f"cfg {CFG:g} as the authors, the empty negative"
    blocks = "in Flux's 19 double-stream blocks (the port's)" if flux else "in every joint block but the last"
    intro = (
        f"# {family.name}: FTEdit, an edit that keeps the rest of the image\n\n"
        + setup_note(family, "**Source prompt**: a caption of your image; **Target prompt**: that caption with the "
                              "edit (words changed, added or removed); give FTEdit the same two.") +
        f"\n**FTEdit Invert** (Xu et al., CVPR 2025) inverts your image in {steps} steps, each Euler step solved as a "
        f"fixed point ({INVERT['iterations']} iterations, their velocities averaged: 3 evaluations a step). "
        f"**FTEdit** patches the model so that the source and the edit sample as one pair, the source row "
        f"following the inversion: {blocks}, the edit's text features at the words the "
        f"prompts share are the source's (AdaLN invariance, all steps: *adaln_steps* {EDIT['adaln_steps']:g}) and, in "
        f"the first {EDIT['attention_steps']:g} of the steps, the edit attends with the source's values "
        f"(*attention_steps*). Raise either to keep more of the image, lower them for a stronger edit. Sampled by "
        f"the stock **SamplerCustomAdvanced** (euler, {scale}) with the "
        f"node's NOISE, the inversion's SIGMAS and the image's latent repeated twice (**Repeat Latent Batch**); "
        f"**Latent From Batch** takes the edit (row 1). The strip: the image and the edit.")
    model = flow_model(family)
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFTEditInvert",
         "widgets": {"steps": steps, "scheduler": SCHEDULES[family.name], "iterations": INVERT["iterations"],
                     "average_from": INVERT["average_from"], "average_until": INVERT["average_until"]},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "ftedit", "type": "InvertEditFTEdit",
         "widgets": {"source_prompt": PHOTO_SOURCE, "target_prompt": PHOTO_TARGET,
                     "adaln_steps": EDIT["adaln_steps"], "attention_steps": EDIT["attention_steps"],
                     "guidance": EDIT["guidance"]},
         "inputs": {"model": model, "clip": clip_of(family), "inversion": ("invert", 0)}},
        {"key": "guider", "type": "BasicGuider",
         "inputs": {"model": ("ftedit", "MODEL"), "conditioning": ("ftedit", "CONDITIONING")}} if flux else
        {"key": "guider", "type": "CFGGuider", "widgets": {"cfg": CFG},
         "inputs": {"model": ("ftedit", "MODEL"), "positive": ("ftedit", "CONDITIONING"), "negative": ("empty", 0)}},
        {"key": "pair_latent", "type": "RepeatLatentBatch", "widgets": {"amount": 2},
         "inputs": {"samples": ("encode", "LATENT")}, "title": "Repeat Latent Batch (the pair)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("ftedit", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("pair_latent", "LATENT")}},
        {"key": "pick", "type": "LatentFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"samples": ("sample", 0)}, "title": "Latent From Batch (the edit)"},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("pick", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/{family.name.lower()}_ftedit",
                   "Image | FTEdit")
    return {"nodes": nodes}


def sd3_ftedit() -> dict:
    return _ftedit(SD3)


def flux_ftedit() -> dict:
    return _ftedit(FLUX)


WORKFLOWS = {"Flux - FTEdit": flux_ftedit, "SD3 - FTEdit": sd3_ftedit}
CHECKPOINT = {"Flux - FTEdit": (TOY_FLOW, {}),
              "SD3 - FTEdit": ({}, {"InvertEditFTEditInvert": {"steps": 6}})}
