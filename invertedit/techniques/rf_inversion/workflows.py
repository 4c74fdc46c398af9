"""RF-Inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, Family, SCHEDULES, SD3, flow_front, flow_model, flow_sample, setup_note,
                                     strip)
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
