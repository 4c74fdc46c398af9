"""RF-Inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, WAN, WAN_TINY, Family, SCHEDULES, SD3, clip_of, flow_front, flow_model,
                                     flow_sample, setup_note, strip, vae_of, wan_clip_front, wan_clip_outputs,
                                     wan_setup_note)
from ...workflows.toy import TARGET_PROMPT


def _rf_inversion_edit(family: Family, edit_guidance: float) -> dict:
    scale = "guidance" if family is FLUX else "cfg"
    intro = (
        f"# {family.name}: RF-Inversion, an edit that keeps the structure\n\n"
        + setup_note(family, "**Target prompt**: what the edited image shows (RF-Inversion inverts with an empty "
                              "prompt).") +
        "\n**RF-Inversion Invert** (Rout et al.) integrates the model's velocity from your image towards noise, "
        "pulled by gamma 0.5 towards a fixed noise (28 steps, guidance 0, empty prompt: the authors' pipeline, written "
        "for Flux). **RF-Inversion** patches the model so that in the first quarter of the steps each prediction is "
        f"pulled towards your image by eta 0.9; after that the target prompt ({scale} {edit_guidance:g}) alone. "
        "Sampled by the stock **SamplerCustomAdvanced** with euler, the inversion's NOISE and SIGMAS. Raise eta or "
        "stop to keep more of the image, lower them to edit more. The strip: the image and the edit.")
    model = flow_model(family)
    nodes = flow_front(family, intro, source=False) + [
        {"key": "inverting", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Prompt while inverting (empty)"},
        {"key": "invert", "type": "InvertEditRFInversionInvert",
         "widgets": {"steps": 28, "scheduler": SCHEDULES[family.name], "gamma": 0.5, "guidance": 0.0, "seed": 0},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("inverting", 0)}},
        {"key": "control", "type": "InvertEditRFInversion",
         "widgets": {"eta": 0.9, "start": 0.0, "stop": 0.25, "eta_decay": 0.0},
         "inputs": {"model": model, "inversion": ("invert", 0)}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
    ]
    nodes += flow_sample(family, "edit", ("control", "MODEL"), ("target", 0), edit_guidance, ("invert", "NOISE"),
                         ("invert", "SIGMAS"), ("sampler", "SAMPLER"), f"Edit (target prompt, {scale} {edit_guidance:g})")
    nodes += strip([("resize", "image"), ("edit_decode", "edit")], f"invertedit/{family.name.lower()}_rf_inversion",
                   "Image | edit")
    return {"nodes": nodes}


def flux_rf_inversion_edit() -> dict:
    return _rf_inversion_edit(FLUX, edit_guidance=3.5)     # the community pipeline's default guidance


def sd3_rf_inversion_edit() -> dict:
    return _rf_inversion_edit(SD3, edit_guidance=3.5)


WORKFLOWS = {"Flux - RF-Inversion edit": flux_rf_inversion_edit, "SD3 - RF-Inversion edit": sd3_rf_inversion_edit}
CHECKPOINT = {"Flux - RF-Inversion edit": ({"Target prompt": {"value": TARGET_PROMPT}}, {}),
              "SD3 - RF-Inversion edit": ({}, {"InvertEditRFInversionInvert": {"steps": 5}})}


#: RF-Inversion on a Wan 2.1 clip: the authors' settings are Flux's (28 steps, gamma 0.5, eta 0.9 over the first
#: quarter); the edit is guided as Wan samples (classifier-free guidance 5 with Wan's negative), on FiVE-Bench's Wan
#: shift (5)
WAN_RF = {"steps": 28, "shift": 5.0, "cfg": 5.0}


def wan_clip_rf_inversion_edit() -> dict:
    """RF-Inversion of a Wan 2.1 clip (one latent [1, 16, frames, h, w]) and its controlled edit, saved as frames and as
    an animated WebP beside the source."""
    s = WAN_RF
    intro = (
        "# Wan 2.1: a clip edited with RF-Inversion\n\n"
        + wan_setup_note("**Target prompt**: what the edited clip shows (RF-Inversion inverts with an empty prompt).")
        + "\n**RF-Inversion Invert** (Rout et al.) integrates the model's velocity from the whole clip's latent "
        f"towards noise, pulled by gamma 0.5 towards a fixed noise ({s['steps']} steps, an empty prompt: the authors' "
        "settings, written for Flux). **RF-Inversion** patches the model so that in the first quarter of the steps "
        "each prediction is pulled towards your clip by eta 0.9; after that the target prompt alone, guided as Wan "
        f"samples (cfg {s['cfg']:g}, Wan's negative), at FiVE-Bench's shift {s['shift']:g}. Sampled by the stock "
        "**SamplerCustomAdvanced** with euler, the inversion's NOISE and SIGMAS. Raise eta or stop to keep more of "
        "the clip, lower them to edit more. The edit is saved as frames and as an animated WebP, the source beside "
        "it.\n\n" + WAN_TINY)
    model = ("shift", "MODEL")
    nodes = wan_clip_front(intro, s["shift"], source=False) + [
        {"key": "inverting", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": clip_of(WAN)},
         "title": "Prompt while inverting (empty)"},
        {"key": "invert", "type": "InvertEditRFInversionInvert",
         "widgets": {"steps": s["steps"], "scheduler": "simple", "gamma": 0.5, "guidance": 0.0, "seed": 0},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("inverting", 0)}},
        {"key": "control", "type": "InvertEditRFInversion",
         "widgets": {"eta": 0.9, "start": 0.0, "stop": 0.25, "eta_decay": 0.0},
         "inputs": {"model": model, "inversion": ("invert", 0)}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "guider", "type": "CFGGuider", "widgets": {"cfg": s["cfg"]},
         "inputs": {"model": ("control", "MODEL"), "positive": ("target", 0), "negative": ("empty", 0)}},
        {"key": "edit", "type": "SamplerCustomAdvanced", "title": f"Edit (target prompt, cfg {s['cfg']:g})",
         "inputs": {"noise": ("invert", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "edit_decode", "type": "VAEDecode", "inputs": {"samples": ("edit", 0), "vae": vae_of(WAN)}},
    ] + wan_clip_outputs("edit_decode", "invertedit/rf_inversion_wan", "RF-Inversion")
    return {"nodes": nodes, "result": "save"}


WORKFLOWS["Wan 2.1 - Clip edit (RF-Inversion)"] = wan_clip_rf_inversion_edit
# on the Demo Model's tiny random Wan 2.1 with the toy world's target; the still sample as a clip of 5 frames, 6 steps
CHECKPOINT["Wan 2.1 - Clip edit (RF-Inversion)"] = ({"Target prompt": {"value": TARGET_PROMPT},
                                                     "RepeatImageBatch": {"amount": 5}},
                                                    {"InvertEditRFInversionInvert": {"steps": 6}})
CHECKPOINT_BUILTIN = {"Wan 2.1 - Clip edit (RF-Inversion)": "demo-wan21"}
