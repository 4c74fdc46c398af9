"""Attention maps's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, Family, PHOTO_SOURCE, PHOTO_WORD, SCHEDULES, TOY_FLOW_MAPS, flow_front, flow_model, setup_note)
from ...workflows.toy import ONE_OBJECT_WORLD, TOY_WORLD, TOY_WORLDS, inversion_nodes, toy_note


def attention_maps(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    noun = w["nouns"][0]
    intro = (
        "# What the model attends to, per word\n\n"
        "**Attention Store** evaluates the source prompt on the inversion's trajectory and aggregates each word's "
        "cross-attention maps (Prompt-to-Prompt's AttentionStore): labelled heatmaps over the image, and the mask "
        "of the chosen words (local blend: 3x3 max-pool, threshold 0.3), shown here with **Convert Mask to Image**; "
        "any node that takes a MASK can use it.\n\n" + toy_note(world))
    if world != ONE_OBJECT_WORLD:
        intro += ("\n\nThe two-object world: its model points each word at its object, so the mask of "
                  f"'{noun}' is the {noun} and not the other object.")
    nodes = [n for n in inversion_nodes(intro, world) if n["key"] != "apply"] + [
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": w["source"], "words": noun, "start": 0.0, "end": 1.0, "threshold": 0.3},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "inversion": ("invert", 0),
                    "image": ("image", "IMAGE")}},
        {"key": "save_maps", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/attention_maps"},
         "inputs": {"images": ("store", "IMAGE")}, "title": "Heatmaps, one per word"},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("store", "MASK")}},
        {"key": "save_mask", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/attention_mask"},
         "inputs": {"images": ("mask_image", "IMAGE")}, "title": f"Mask of '{noun}'"},
    ]
    return {"nodes": nodes}


def _flow_attention_maps(family: Family) -> dict:
    intro = (
        f"# {family.name}: what the transformer attends to, per word\n\n"
        + setup_note(family, "**Source prompt** and Attention Store's *prompt*: the same caption of your image; "
                              "*words*: the words whose region you want as a MASK.") +
        "\n**Flow Invert** inverts your image (RF-Solver, 25 steps). **Attention Store** evaluates the prompt on the "
        "inversion's trajectory and reads, in the joint attention of every block"
        f"{' (double- and single-stream; dit_blocks chooses)' if family is FLUX else ''}, the image tokens' "
        "probabilities on each word's text tokens: labelled heatmaps over the image, and the mask of the chosen words "
        "(3x3 max-pool, threshold 0.3) for any node that takes a MASK.")
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFlowInvert",
         "widgets": {"solver": "rf-solver", "steps": 25, "scheduler": SCHEDULES[family.name], "guidance": 1.0},
         "inputs": {"model": flow_model(family), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": PHOTO_SOURCE, "words": PHOTO_WORD, "start": 0.0, "end": 1.0, "threshold": 0.3,
                     "dit_blocks": "all"},
         "inputs": {"model": flow_model(family), "clip": ("model", "CLIP"), "inversion": ("invert", 0),
                    "image": ("resize", "IMAGE")}},
        {"key": "save_maps", "type": "SaveImage",
         "widgets": {"filename_prefix": f"invertedit/{family.name.lower()}_attention_maps"},
         "inputs": {"images": ("store", "IMAGE")}, "title": "Heatmaps, one per word"},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("store", "MASK")}},
        {"key": "save_mask", "type": "SaveImage",
         "widgets": {"filename_prefix": f"invertedit/{family.name.lower()}_attention_mask"},
         "inputs": {"images": ("mask_image", "IMAGE")}, "title": f"Mask of '{PHOTO_WORD}'"},
    ]
    return {"nodes": [n for n in nodes if n["key"] != "target"]}


def flux_attention_maps() -> dict:
    return _flow_attention_maps(FLUX)


WORKFLOWS = {"Toy - Attention maps": attention_maps, "Flux - Attention maps": flux_attention_maps}
CHECKPOINT = {"Flux - Attention maps": (TOY_FLOW_MAPS, {})}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Attention maps': 'save_mask', 'Flux - Attention maps': 'save_mask'}
