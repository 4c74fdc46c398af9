"""DragDiffusion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import SD15, checkpoint_front, setup_note
from ...workflows.toy import (MODEL_LOADER, SOURCE_PROMPT, STEPS, TOY_NOTE, TOY_WORLD, TOY_WORLDS, decode_pair,
                              vae_roundtrip)
from . import ROW

START = 15            # DDIM Invert's start_at_step: the code's inversion strength 0.7 of 50 steps
TOY_POINTS = "465,415 -> 500,470"         # the blue square's lower right corner, dragged out
TOY_BOX = (280, 230, 225, 275)            # the editable region (x, y, width, height): the square and its surround
PHOTO_POINTS = "395,237 -> 395,190"       # the girl's left hand (on the right) raised, in the 512 px image
PHOTO_BOX = (300, 150, 150, 140)          # her arm on that side
TOY_LORA_STEPS, TOY_PIX_STEPS = 20, 80    # the toy workflow's LoRA steps (the code: 80)


def _mask(box: tuple[int, int, int, int], size: int) -> list[dict]:
    """The editable region as a box: SolidMask 0 at the image's size with a SolidMask 1 added at ``box``."""
    x, y, w, h = box
    return [
        {"key": "canvas", "type": "SolidMask", "widgets": {"value": 0.0, "width": size, "height": size},
         "title": "Editable region: the canvas"},
        {"key": "box", "type": "SolidMask", "widgets": {"value": 1.0, "width": w, "height": h},
         "title": "Editable region: the box"},
        {"key": "region", "type": "MaskComposite", "widgets": {"x": x, "y": y, "operation": "add"},
         "inputs": {"destination": ("canvas", "MASK"), "source": ("box", "MASK")},
         "title": "Editable region (or paint one in Load Image's mask editor)"},
    ]


def _drag_nodes(points: str, feature_idx: int, start_layer: int, lora_steps: int, n_pix_step: int) -> list[dict]:
    lora = ROW.settings_of("InvertEditDragDiffusionLoRA")
    drag = ROW.settings_of("InvertEditDragDiffusion")
    return [
        {"key": "lora", "type": "InvertEditDragDiffusionLoRA",
         "widgets": {**lora, "steps": lora_steps, "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "positive": ("prompt", 0), "latent": ("encode", "LATENT")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": START, "cfg": 1.0},
         "inputs": {"model": ("lora", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)},
         "title": f"DDIM Invert (start_at_step {START} of {STEPS}: inversion strength 0.7)"},
        {"key": "drag", "type": "InvertEditDragDiffusion",
         "widgets": {**drag, "points": points, "n_pix_step": n_pix_step, "feature_idx": feature_idx,
                     "start_layer": start_layer},
         "inputs": {"model": ("lora", "MODEL"), "positive": ("prompt", 0), "inversion": ("invert", 0),
                    "mask": ("region", "MASK")}},
        {"key": "sample", "type": "KSamplerAdvanced",
         "widgets": {"add_noise": "disable", "noise_seed": 0, "steps": STEPS, "cfg": 1.0, "sampler_name": "ddim",
                     "scheduler": "ddim_uniform", "start_at_step": START, "end_at_step": 10000,
                     "return_with_leftover_noise": "disable"},
         "inputs": {"model": ("drag", "MODEL"), "positive": ("prompt", 0), "negative": ("prompt", 0),
                    "latent_image": ("drag", "LATENT")},
         "title": f"KSampler (Advanced): the pair from step {START}, cfg 1"},
    ]


def _how(points: str) -> str:
    return (
        "**DragDiffusion LoRA** fits a rank-16 LoRA to the image (the code: 80 AdamW steps, lr 5e-4), **DDIM Invert** "
        f"with it stops at step {START} of {STEPS} (the code's inversion strength 0.7), **DragDiffusion** optimises that "
        "latent so the features around each handle point move towards its target (motion supervision on the UNet "
        "decoder's features, point tracking; 80 Adam steps at lr 0.01), keeping the denoising step outside the "
        "editable region, and one stock **KSampler (Advanced)** run (cfg 1, from the same step, no added noise) "
        "denoises the pair: row 0 the reconstruction, row 1 the drag, whose self-attention reads row 0's keys and "
        f"values from layer 10. Points are `x,y -> x,y` in the image's pixels (here `{points}`); connect a pair of "
        "painted dots (handle_mask, target_mask) instead where you prefer painting.")


def toy_drag(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    intro = (
        "# DragDiffusion: drag a corner of the blue square\n\n" + _how(TOY_POINTS) + "\n\n"
        f"On the toy model: the decoder level 2 (its levels are 0-2; the code's 3 is SD1.5's) and self-attention from "
        f"layer 2 of its 4 (SD1.5: 10 of 16); the LoRA trains {TOY_LORA_STEPS} steps instead of 80 (the toy model "
        "knows its scenes). The editable region is a box about the square.\n\n" + TOY_NOTE)
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": w["sample"]}},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": w["source"]},
         "inputs": {"clip": ("model", "CLIP")}, "title": "The image's prompt"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        *_mask(TOY_BOX, w["size"]),
        *_drag_nodes(TOY_POINTS, 2, w["masactrl_layer"], TOY_LORA_STEPS, TOY_PIX_STEPS),
    ]
    nodes += decode_pair("sample", "invertedit/drag_diffusion", edit="Dragged", reconstruction="Reconstruction")
    return {"nodes": nodes + vae_roundtrip()}


def sd15_drag() -> dict:
    family = SD15
    intro = (
        f"# {family.name}: DragDiffusion\n\n"
        + setup_note(family, "**The image's prompt**: a caption of your image (the code uses it for the LoRA, the "
                             "inversion and the drag). **DragDiffusion**'s *points*: handle -> target pairs in the "
                             "scaled image's pixels. The editable region: a box here (SolidMask + MaskComposite), or "
                             "connect Load Image's MASK and paint it in its mask editor (an empty mask: no region, the "
                             "whole image may change).") +
        "\n" + _how(PHOTO_POINTS) + " The code's defaults throughout.")
    nodes = [n for n in checkpoint_front(family, intro, invert=False) if n["key"] != "empty"]
    for n in nodes:
        if n["key"] == "prompt":
            n["title"] = "The image's prompt"
    nodes += _mask(PHOTO_BOX, family.size) + _drag_nodes(PHOTO_POINTS, 3, 10, 80, 80)
    nodes += decode_pair("sample", "invertedit/drag_diffusion_sd15", edit="Dragged", reconstruction="Reconstruction")
    return {"nodes": nodes}


WORKFLOWS = {"Toy - DragDiffusion drag": toy_drag, "SD1.5 - DragDiffusion drag": sd15_drag}
# the checkpoint template on the toy model: its prompt, a corner of its square, the toy UNet's levels and layers;
# quick: fewer steps everywhere (the start step keeps its fraction)
_TOY_SETTINGS = {"The image's prompt": {"value": SOURCE_PROMPT},
                 "InvertEditDragDiffusion": {"points": TOY_POINTS, "feature_idx": 2, "start_layer": 2},
                 "Editable region (or paint one in Load Image's mask editor)": {"x": TOY_BOX[0], "y": TOY_BOX[1]},
                 "Editable region: the box": {"width": TOY_BOX[2], "height": TOY_BOX[3]}}
_QUICK = {"InvertEditDDIMInvert": {"steps": 10, "start_at_step": 3}, "KSamplerAdvanced": {"steps": 10, "start_at_step": 3},
          "InvertEditDragDiffusionLoRA": {"steps": 2}, "InvertEditDragDiffusion": {"n_pix_step": 5}}
CHECKPOINT = {"SD1.5 - DragDiffusion drag": (_TOY_SETTINGS, _QUICK)}
# the toy workflow's quick run: its points inside both the 512 px sample and the half-precision lane's 256 px one
# (there the square's corner; the editable box scales with the image)
QUICK_TOY = {"Toy - DragDiffusion drag": {**_QUICK, "InvertEditDDIMInvert": {"steps": 20, "start_at_step": 6},
                                          "KSamplerAdvanced": {"steps": 20, "start_at_step": 6},
                                          "InvertEditDragDiffusion": {"n_pix_step": 20,
                                                                      "points": "232,207 -> 250,235"}}}
