"""Textual Inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.subjects import subject_front
from ...workflows.toy import ONE_OBJECT_WORLD, TOY_WORLDS, draw_samples, toy_note


# Textual Inversion on the toy world: a word for a yellow triangle (docs/measurements.md)
TEXTUAL_INVERSION_TOY = {"steps": 300, "learning_rate": 0.05, "num_vectors": 2, "batch_size": 4, "name": "toy-triangle",
                         "initializer": "square", "caption": "a {} on a white background",
                         "photos": "subject_yellow_triangle.png"}


def textual_inversion_word() -> dict:
    d = TEXTUAL_INVERSION_TOY
    side = TOY_WORLDS[ONE_OBJECT_WORLD]["size"]
    prompt = d["caption"].format(f"embedding:{d['name']}")
    intro = (
        "# Textual Inversion: a new word from a few images\n\n"
        "**Textual Inversion** (Gal et al.; as diffusers' textual_inversion.py) learns the vectors of a new word from "
        "the images, the model and text encoder frozen, and saves them as "
        f"`models/embeddings/{d['name']}.safetensors`: any **CLIP Text Encode** prompt can then say "
        f"`embedding:{d['name']}`. Encode such prompts with the node's **clip** output, so that they run after the "
        "file is written.\n\n"
        "Here the word is learned from four photos of a yellow triangle (Load Image loads them from one animated PNG "
        f"as a batch), starting from the word \"{d['initializer']}\", with one caption (\"{d['caption']}\": the toy "
        "model knows no other kind of sentence; for a real checkpoint leave the caption empty and the node uses the "
        "reference's templates, \"a photo of a {}\"...). The stock KSampler then draws the learned word and the "
        "initializer's prompt. The model stays frozen: Textual Inversion names what a model can draw, it cannot "
        "teach it a new shape (DreamBooth can).\n\n"
        f"Settings for the toy model on a CPU (about 30 s): {d['steps']} steps at lr {d['learning_rate']:g}, "
        f"{d['num_vectors']} vectors, batch {d['batch_size']}. diffusers' README for Stable Diffusion: 3000 steps at "
        "lr 0.002 (5e-4 x 4), one vector (the node's defaults).\n\n" + toy_note(ONE_OBJECT_WORLD))
    nodes = subject_front(intro, d["photos"]) + [
        {"key": "learn", "type": "InvertEditTextualInversion",
         "widgets": {"name": d["name"], "initializer": d["initializer"], "steps": d["steps"],
                     "learning_rate": d["learning_rate"], "batch_size": d["batch_size"],
                     "num_vectors": d["num_vectors"], "templates": "object", "seed": 0, "caption": d["caption"]},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "images": ("encode", "LATENT")}},
        {"key": "word", "type": "CLIPTextEncode", "widgets": {"text": prompt}, "inputs": {"clip": ("learn", "CLIP")},
         "title": "A prompt with the learned word"},
        {"key": "plain", "type": "CLIPTextEncode", "widgets": {"text": d["caption"].format(d["initializer"])},
         "inputs": {"clip": ("learn", "CLIP")}, "title": "The initializer's prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "noise_latent", "type": "EmptyLatentImage", "widgets": {"width": side, "height": side, "batch_size": 4},
         "title": f"Empty latent (4 samples at the toy world's {side} px)"},
    ]
    nodes += draw_samples((("word", "model", "word", "The learned word"),
                            ("plain", "model", "plain", "The initializer's word")), "invertedit/textual_inversion")
    return {"nodes": nodes}


WORKFLOWS = {"textual_inversion_word": textual_inversion_word}
