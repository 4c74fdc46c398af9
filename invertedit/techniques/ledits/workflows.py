"""LEDITS++'s example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_CONCEPT, QUICK, SD15, checkpoint_front, setup_note
from ...workflows.toy import (SOURCE_PROMPT, STEPS, TARGET_PROMPT, TOY_WORLD, edit_friendly_guided, inversion_nodes, toy_note, vae_roundtrip)


def ledits_edit() -> dict:
    intro = (
        "# LEDITS++: concepts with implicit masks on an edit-friendly inversion\n\n"
        "**Edit-Friendly DDPM Invert** (here with the empty prompt: LEDITS++ edits from the unconditional "
        "prediction, so inverting with it keeps the unedited image exact; 20 steps, skip 3, as LEDITS++'s 'as few as "
        "20 steps') stores the noise maps. **LEDITS++ Concept** nodes (Brack et al.; paper defaults, used here: "
        "scale 5, threshold 0.9, warmup 0) chain into **LEDITS++ Guidance**, a GUIDER for the stock "
        "**SamplerCustomAdvanced** with the **Edit-Friendly DDPM Sampler**: each concept acts only where its own "
        "cross-attention maps and its noise estimate agree (mask 'intersect').\n\n"
        "The toy model only learned whole captions, so its concepts are the target caption (added) and the source "
        "caption (removed): they differ in the circle's colour, and where they agree (the square, the background) "
        "their guidance cancels. With a real checkpoint use short concepts ('glasses', 'a smile').\n\n"
        + toy_note(TOY_WORLD))
    nodes = [n for n in inversion_nodes(intro, TOY_WORLD) if n["key"] not in ("invert", "apply", "prompt")] + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Empty prompt"},
        {"key": "invert", "type": "InvertEditDDPMInvert",
         "widgets": {"steps": 20, "scheduler": "ddim_uniform", "start_at_step": 3, "cfg": 1.0, "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("empty", 0),
                    "negative": ("empty", 0)}},
        {"key": "add", "type": "InvertEditLEDITSConcept",
         "widgets": {"text": TARGET_PROMPT, "direction": "add", "scale": 5.0, "warmup": 0, "cooldown": 0,
                     "threshold": 0.9, "weight": 1.0},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Concept to add"},
        {"key": "remove", "type": "InvertEditLEDITSConcept",
         "widgets": {"text": SOURCE_PROMPT, "direction": "remove", "scale": 5.0, "warmup": 0, "cooldown": 0,
                     "threshold": 0.9, "weight": 1.0},
         "inputs": {"clip": ("model", "CLIP"), "concepts": ("add", 0)}, "title": "Concept to remove"},
        {"key": "ledits", "type": "InvertEditLEDITSGuidance", "widgets": {"mask": "intersect"},
         "inputs": {"model": ("model", "MODEL"), "negative": ("empty", 0), "concepts": ("remove", 0)}},
    ] + edit_friendly_guided("ledits", "LEDITS++ edit")
    return {"nodes": nodes + vae_roundtrip()}


def sd15_ledits_edit() -> dict:
    family = SD15
    intro = (
        f"# {family.name}: LEDITS++, add or remove concepts\n\n"
        + setup_note(family, "No prompt describes the image: write the edit as short concepts in **LEDITS++ Concept** "
                              f"(here: add '{PHOTO_CONCEPT}'; direction *remove* takes a concept away; chain more "
                              "concept nodes through their *concepts* input).") + "\n"
        "**Edit-Friendly DDPM Invert** with the empty prompt (50 steps, the noisiest 8 skipped: LEDITS++'s skip "
        "0.15) stores one noise map per step, so the unedited image comes back exactly. **LEDITS++ "
        "Guidance** (scale 5, threshold 0.9, warmup 0, mask intersect: each concept acts only where its "
        "cross-attention and its noise estimate agree) is the GUIDER of the stock **SamplerCustomAdvanced** with "
        "**DisableNoise**, the **Edit-Friendly DDPM Sampler** and the inversion's SIGMAS. Stronger edit: raise the "
        "concept's scale (up to ~10) or lower its threshold.")
    nodes = [n for n in checkpoint_front(family, intro, invert=False) if n["key"] != "prompt"] + [
        {"key": "invert", "type": "InvertEditDDPMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 8, "cfg": 1.0, "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("empty", 0),
                    "negative": ("empty", 0)}},
        {"key": "add", "type": "InvertEditLEDITSConcept",
         "widgets": {"text": PHOTO_CONCEPT, "direction": "add", "scale": 5.0, "warmup": 0, "cooldown": 0,
                     "threshold": 0.9, "weight": 1.0},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Concept to add"},
        {"key": "ledits", "type": "InvertEditLEDITSGuidance", "widgets": {"mask": "intersect"},
         "inputs": {"model": ("model", "MODEL"), "negative": ("empty", 0), "concepts": ("add", 0)}},
    ] + edit_friendly_guided("ledits", "LEDITS++ edit")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - LEDITS++ edit": ledits_edit, "SD1.5 - LEDITS++ edit": sd15_ledits_edit}
# the concept: the target caption (ledits_edit says why)
CHECKPOINT = {"SD1.5 - LEDITS++ edit": ({"Concept to add": {"text": TARGET_PROMPT}},
                                        {"InvertEditDDPMInvert": {"steps": QUICK, "start_at_step": 2}})}
