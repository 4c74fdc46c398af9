"""UniEdit-Flow's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, SCHEDULES, SD3, TOY_FLOW, Family, PROMPTS_PLAIN, clip_of, flow_front,
                                     flow_model, setup_note, strip, vae_of)
from . import ROW

INV, EDIT = ROW.settings_of("InvertEditUniInv"), ROW.settings_of("InvertEditUniEditFlow")


def _uniedit_flow(family: Family) -> dict:
    """Uni-Inv then Uni-Edit with the authors' settings (``scripts/edit.sh``, ``demo_edit.py``; the Flux code's
    README): 15 steps, alpha 0.6, omega 5, guidance 1, the inversion with the empty prompt."""
    flux = family is FLUX
    steps, alpha, omega = INV["steps"], INV["alpha"], EDIT["omega"]
    intro = (
        f"# {family.name}: UniEdit-Flow, inversion and edit\n\n"
        + setup_note(family, PROMPTS_PLAIN) +
        f"\n**Uni-Inv** (Jiao et al., ICLR'26) inverts your image with the empty prompt, by a predictor-corrector "
        f"step that the plain Euler step retraces, and stops early: of {steps} steps it runs the last "
        f"floor(alpha x {steps}) = {int(alpha * steps)} (alpha {alpha:g}). **UniEdit-Flow** is the guider that edits "
        "from there: each step evaluates the source and target prompts in one batched call and fuses their "
        "velocities by a mask of where they differ (the target's there, the source's elsewhere), adding omega "
        f"({omega:g}) times their difference. The authors' settings for {family.name}: {steps} steps, alpha "
        f"{alpha:g}, omega {omega:g}, " + ("Flux's distilled guidance 1" if flux else "no classifier-free guidance")
        + ". Raise omega or alpha to change more; lower them to keep more of the image. Sampled by the stock "
        "**SamplerCustomAdvanced** with euler, Uni-Inv's NOISE and SIGMAS and the image's latent"
        + (", **ModelSamplingFlux** at the image's size (the authors' shifted schedule)." if flux else ".")
        + " The strip shows the image and the edit.")
    model = flow_model(family)
    nodes = flow_front(family, intro)
    if flux:   # the inversion's empty prompt (SD3's front has it as the negative)
        nodes.append({"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""},
                      "inputs": {"clip": clip_of(family)}, "title": "Empty prompt (the inversion's)"})
    nodes += [
        {"key": "invert", "type": "InvertEditUniInv",
         "widgets": {"steps": steps, "scheduler": SCHEDULES[family.name], "guidance": INV["guidance"],
                     "alpha": alpha, "zero_initial": INV["zero_initial"]},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("empty", 0)}},
        {"key": "uniedit", "type": "InvertEditUniEditFlow",
         "widgets": {"omega": omega, "guidance": EDIT["guidance"], "mask": "mean"},
         "inputs": {"model": model, "source": ("prompt", 0), "target": ("target", 0)}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("invert", "NOISE"), "guider": ("uniedit", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/uniedit_flow_{family.name.lower()}",
                   "Image | UniEdit-Flow")
    return {"nodes": nodes}


def flux_uniedit_flow() -> dict:
    return _uniedit_flow(FLUX)


def sd3_uniedit_flow() -> dict:
    return _uniedit_flow(SD3)


WORKFLOWS = {"Flux - UniEdit-Flow": flux_uniedit_flow, "SD3 - UniEdit-Flow": sd3_uniedit_flow}
CHECKPOINT = {"Flux - UniEdit-Flow": (TOY_FLOW, {}),
              "SD3 - UniEdit-Flow": ({}, {})}
