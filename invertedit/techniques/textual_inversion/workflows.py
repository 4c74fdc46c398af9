"""Textual Inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import SD15, SDXL, Family
from ...workflows.subjects import (SUBJECT_CFG, SUBJECT_STEPS, TOY_SAMPLING, TOY_SOURCE, photos_front, photos_note,
                                   subject_front, subject_samples)
from ...workflows.toy import ONE_OBJECT_WORLD, TOY_WORLDS, draw_samples, toy_note
from . import ROW


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


# Textual Inversion on the user's checkpoint: the README's settings are the node's defaults (the row's)
WORD = {k.split(".")[1]: v for k, v in ROW.settings.items() if k.startswith("InvertEditTextualInversion.")}
NAME, INITIALIZER = "my-subject", "girl"
WORD_PROMPT = f"a drawing of embedding:{NAME} on the beach"


def _textual_inversion(family: Family) -> dict:
    tag = family.name.lower().replace(".", "")   # sd15, sdxl: the saved files' names
    d = WORD
    sdxl = (" On SDXL the word is learned in both text encoders, as diffusers' textual_inversion_sdxl.py (its README: "
            "the same learning rate, 500 steps at 768 px in its example).") if family is SDXL else ""
    intro = (
        f"# {family.name}: Textual Inversion, a new word for your subject\n\n"
        + photos_note(family, "the script's --resolution") +
        "\n**Textual Inversion** (Gal et al.; as diffusers' textual_inversion.py trains it) learns the vector of a new "
        "word from your photos, the model and its text encoder frozen: each step captions a batch of the photos with "
        "the reference's object templates (\"a photo of a {}\", \"a rendering of a {}\"... 27 of them; flipped at "
        f"random) and moves the word's vector to predict their noise. {d['num_vectors']} vector "
        f"(the paper's), starting from the word *{INITIALIZER}* (*initializer*: one word of one token naming your "
        f"subject's class, the script's --initializer_token), {d['steps']} steps at learning rate "
        f"{d['learning_rate']:g}, batch {d['batch_size']}: diffusers' README (5e-4 scaled by its 1 x 4 accumulated "
        "batch; the paper's base rate 0.005, scaled by its 2 GPUs x batch 4), the node's defaults.{sdxl} The node "
        f"saves the word as `models/embeddings/{NAME}.safetensors` (*name*): any **CLIP Text Encode** prompt can say "
        f"`embedding:{NAME}`. The stock **KSampler** draws it somewhere new (\"{WORD_PROMPT}\"; {SUBJECT_STEPS} steps "
        f"at cfg {SUBJECT_CFG:g}, the README's inference), its prompt encoded with the node's **clip** output so that "
        "it runs after the file is written. Change *name* and the prompt's word together.\n\n"
        "Textual Inversion names what the model can already draw: it does not teach it a new shape (DreamBooth and "
        "Custom Diffusion change the model). The cost: each step encodes the batch's captions and runs one UNet "
        "forward and one backward through both.").replace("{sdxl}", sdxl)
    nodes = photos_front(family, intro) + [
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("photos", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "learn", "type": "InvertEditTextualInversion",
         "widgets": dict(d, name=NAME, initializer=INITIALIZER, templates="object", seed=0, caption=""),
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "images": ("encode", "LATENT")}},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
    ] + subject_samples(("model", "MODEL"), ("learn", "CLIP"), WORD_PROMPT, "Prompt with the learned word",
                        f"invertedit/textual_inversion_{tag}",
                        shown="The subject, drawn from the learned word")
    return {"nodes": nodes}


def sd15_textual_inversion() -> dict:
    return _textual_inversion(SD15)


def sdxl_textual_inversion() -> dict:
    return _textual_inversion(SDXL)


WORKFLOWS = {"Toy - Textual Inversion word": textual_inversion_word, "SD1.5 - Textual Inversion": sd15_textual_inversion,
             "SDXL - Textual Inversion": sdxl_textual_inversion}
# The checkpoint templates on the one-object toy world (make_workflows.CHECKPOINT_BUILTINS): its sample (a red circle)
# as the photos, textual_inversion_word's toy settings, a word that starts as "square" and one caption in the toy
# world's words (the toy model knows no other sentence); the quick run (the tests) trains 10 steps
_TOY = TEXTUAL_INVERSION_TOY
TOY_WORD = {"InvertEditTextualInversion": {"steps": _TOY["steps"], "learning_rate": _TOY["learning_rate"],
                                           "num_vectors": _TOY["num_vectors"], "initializer": _TOY["initializer"],
                                           "caption": TOY_SOURCE.replace("circle", "{}")},
            "Prompt with the learned word": {"value": TOY_SOURCE.replace("circle", f"embedding:{NAME}")},
            **TOY_SAMPLING}
QUICK_WORD = {"InvertEditTextualInversion": {"steps": 10}, "KSampler": {"steps": 5}}
CHECKPOINT = {"SD1.5 - Textual Inversion": (TOY_WORD, QUICK_WORD), "SDXL - Textual Inversion": (TOY_WORD, QUICK_WORD)}
CHECKPOINT_BUILTIN = {name: "toy-one-object" for name in CHECKPOINT}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Textual Inversion word': 'save_word'}
