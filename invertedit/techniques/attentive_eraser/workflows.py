"""Attentive Eraser's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import SD15, SDXL, SOURCE_PROMPT, Family, checkpoint_front, setup_note
from ...workflows.toy import MODEL_LOADER, STEPS, TOY_WORLDS, TOY_WORLD, decode_and_save, toy_note, vae_roundtrip

# The toy world's red circle (its sample's exact colour, 0xE61A1A): the stock Image Color To Mask gives its mask.
RED = 0xE61A1A
# The toy UNet has 4 self-attention layers, 2 in its decoder; AAS on those two alone leaves the circle (the image
# comes back as the inversion's), on all four the circle is redrawn as the background: the toy workflows start at 0.
TOY_START_LAYER = 0

REMOVE_WORDS = "clouds"   # what the checkpoint templates remove from ComfyUI's example.png (its two white clouds)
MASK_PROMPT = "a drawing of a girl in a pink dress, white clouds in a blue sky"

HOW = ("**Attentive Eraser** (Sun et al., AAAI 2025) removes the masked object: every step the latent runs twice "
       "in one batched UNet call, a plain branch and a removal branch whose self-attention ignores the object's "
       "tokens (AAS: Attention Activation and Suppression); the guided prediction moves away from the plain branch "
       "(SARG, scale 9), and outside the mask the image follows its DDIM inversion, so the hole is redrawn from the "
       "background. As the authors' code: DDIM inversion with an empty prompt, 50 steps, both branches with the empty "
       "prompt, the mask blurred and thresholded (a dilation). Its GUIDER goes into the stock "
       "**SamplerCustomAdvanced** with **DisableNoise**, **KSamplerSelect** (ddim) and DDIM Invert's SIGMAS and "
       "LATENT.\n\n")


def _eraser(mask: tuple, widgets: dict) -> list[dict]:
    return [
        {"key": "eraser", "type": "InvertEditAttentiveEraser",
         "widgets": {"removal_scale": 9.0, "ss_steps": 9, "ss_scale": 0.3, "start_step": 0, "end_step": -1,
                     "start_layer": -1, "end_layer": -1, "mask_blur": 7, **widgets},
         "inputs": {"model": ("model", "MODEL"), "conditioning": ("empty", 0), "inversion": ("invert", 0),
                    "mask": mask}},
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("eraser", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("invert", "LATENT")}},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("eraser", "MASK")}},
        {"key": "show_mask", "type": "PreviewImage", "inputs": {"images": ("mask_image", "IMAGE")},
         "title": "The region redrawn (after the blur and threshold, latent cells)"},
    ]


def _invert(latent: tuple) -> dict:
    return {"key": "invert", "type": "InvertEditDDIMInvert",
            "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
            "inputs": {"model": ("model", "MODEL"), "latent": latent, "positive": ("empty", 0)}}


def toy_remove(world: str = TOY_WORLD) -> dict:
    intro = (
        "# Attentive Eraser: remove an object\n\n" + HOW +
        "Here the red circle of the toy world is removed: its mask is the stock **Image Color To Mask** of the "
        "circle's colour (paint one, or take Attention Store's mask of a word, on your images). The toy UNet has 4 "
        "self-attention layers; the authors' decoder layers alone (start_layer -1: SD's 7-16, SDXL's 34-70) are "
        "too few there, so AAS acts on all four (start_layer 0).\n\n" + toy_note(world))
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": TOY_WORLDS[world]["sample"]}},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Prompt of both branches (empty, as the authors)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        _invert(("encode", "LATENT")),
        {"key": "colour_mask", "type": "ImageColorToMask", "widgets": {"color": RED},
         "inputs": {"image": ("image", "IMAGE")}, "title": "The object to remove (the red circle's colour)"},
    ] + _eraser(("colour_mask", "MASK"), {"start_layer": TOY_START_LAYER})
    nodes += decode_and_save("removed", "sample", "invertedit/attentive_eraser", "Object removed")
    return {"nodes": nodes + vae_roundtrip()}


def _checkpoint_remove(family: Family, blur: int) -> dict:
    intro = (
        f"# {family.name}: Attentive Eraser, remove an object\n\n" + HOW +
        setup_note(family, "**Prompts**: both branches take the empty prompt (the authors'). **Attention Store**'s "
                           "prompt describes your image and its *words* name the object to remove (here: "
                           f"'{REMOVE_WORDS}'); its MASK is the region. Or paint the object in Load Image's mask "
                           "editor (right click > Open in MaskEditor) and connect Load Image's MASK instead.") +
        f"\nmask_blur {blur}: the authors' {'7 taps at 512 px (inference/DIP.py)' if blur == 7 else '77 taps at 1024 px (main.py)'}.\n")
    nodes = checkpoint_front(family, intro, invert=False) + [
        _invert(("encode", "LATENT")),
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": MASK_PROMPT, "words": REMOVE_WORDS, "start": 0.0, "end": 1.0, "threshold": 0.3,
                     "dit_blocks": "all", "mask_pool": 3},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "inversion": ("invert", 0),
                    "image": ("resize", "IMAGE")},
         "title": f"Attention Store (the mask of '{REMOVE_WORDS}')"},
    ] + _eraser(("store", "MASK"), {"mask_blur": blur})
    nodes = [n for n in nodes if n["key"] != "prompt"]   # no source prompt: the authors invert with the empty one
    nodes += decode_and_save("removed", "sample", f"invertedit/{family.name.lower().replace('.', '')}_attentive_eraser",
                             "Object removed")
    return {"nodes": nodes}


def sd15_remove() -> dict:
    return _checkpoint_remove(SD15, 7)


def sdxl_remove() -> dict:
    return _checkpoint_remove(SDXL, 77)


WORKFLOWS = {"Toy - Attentive Eraser remove": toy_remove, "SD1.5 - Attentive Eraser remove": sd15_remove,
             "SDXL - Attentive Eraser remove": sdxl_remove}
QUICK_TOY = {"Toy - Attentive Eraser remove": {"InvertEditDDIMInvert": {"steps": 20}}}
# On the toy model: the toy world's caption and its circle as the object (Attention Store), AAS on all its layers.
# The SDXL template's 77 taps are the authors' at 1024 px: on the toy's 512 px (and the SDXL demo model's smaller
# pictures) the SD script's 7.
TOY_CHECKPOINT = {"InvertEditAttentionStore": {"prompt": SOURCE_PROMPT, "words": "circle"},
                  "InvertEditAttentiveEraser": {"start_layer": TOY_START_LAYER, "mask_blur": 7}}
# Quick runs: 10 steps; the SDXL one also on the Demo Model's random SDXL, whose word maps are flat: at Attention
# Store's 0.3 its mask is the whole picture (refused: nothing to fill from), at 0.9 a part of it.
QUICK = {"InvertEditDDIMInvert": {"steps": 10}, "InvertEditAttentionStore": {"threshold": 0.9}}
CHECKPOINT = {"SD1.5 - Attentive Eraser remove": (TOY_CHECKPOINT, QUICK),
              "SDXL - Attentive Eraser remove": (TOY_CHECKPOINT, QUICK)}
RESULTS = {"Toy - Attentive Eraser remove": "save_removed", "SD1.5 - Attentive Eraser remove": "save_removed",
           "SDXL - Attentive Eraser remove": "save_removed"}
