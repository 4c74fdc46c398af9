"""LayerVerse's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, PHOTO_SOURCE, PHOTO_WORD, PROMPTS_PLAIN, SCHEDULES, SD3, TOY_FLOW,
                                     TOY_FLOW_MAPS, Family, clip_of, flow_front, flow_model, flow_sample, setup_note,
                                     strip)
from .allocation import PRESET_DEPTHS, PRESETS, format_blocks, parse_blocks, scaled_blocks

#: the authors' launch settings (their scripts/run_fireflow.sh and edit_run_benchmark.py): steps, the edit's guidance
#: (Flux's distilled guidance; SD3.5's cfg), the preset
SETTINGS = {"Flux": (15, 2.0, "LayerVerse (Flux.1 dev)"), "SD3": (28, 7.5, "LayerVerse (SD3.5 medium)")}

#: The toy flow world's DiT has 2 double and 4 single blocks (Flux.1 dev: 19 and 38): the Flux preset's blocks at the
#: same relative depth (``scaled_blocks``): masked double 1 and global double 2 both fall on double 0 (global wins,
#: as in the authors' code), masked single 32-37 on single 3, the last. Not a calibration of the toy.
TOY_DEPTH = (2, 4)
_FLUX_MASKED, _FLUX_GLOBAL = (scaled_blocks(parse_blocks(text), PRESET_DEPTHS["LayerVerse (Flux.1 dev)"], TOY_DEPTH)
                              for text in PRESETS["LayerVerse (Flux.1 dev)"])
TOY_MASKED = format_blocks([b for b in _FLUX_MASKED if b not in _FLUX_GLOBAL])
TOY_GLOBAL = format_blocks(_FLUX_GLOBAL)
TOY_LAYERVERSE = {"InvertEditLayerVerse": {"preset": "custom", "masked_blocks": TOY_MASKED,
                                           "global_blocks": TOY_GLOBAL},
                  "InvertEditFlowInvert": {"layerverse_keep": "every block"}}
#: the tiny random SD3 demo model's 2 joint blocks: masked 0, global 1 (SD3.5 medium's masked blocks lead, its global
#: ones close the stack)
DEMO_SD3_LAYERVERSE = {"InvertEditLayerVerse": {"preset": "custom", "masked_blocks": "0", "global_blocks": "1"},
                       "InvertEditFlowInvert": {"layerverse_keep": "every block"}}


def _layerverse(family: Family) -> dict:
    """FireFlow + LayerVerse with the authors' settings for ``family``: Flow Invert (fireflow, guidance / cfg 1)
    keeping the preset's blocks, the editing mask from Attention Store's map of the word that changes, LayerVerse KV
    Inject, the edit sampled with the Flow Sampler (fireflow) at the authors' guidance."""
    flux = family is FLUX
    steps, guidance, preset = SETTINGS[family.name]
    masked, glob = PRESETS[preset]
    scale = "guidance" if flux else "cfg"
    intro = (
        f"# {family.name}: LayerVerse, FireFlow with KV-injection in calibrated blocks\n\n"
        + setup_note(family, PROMPTS_PLAIN + f" Attention Store's *words*: the word of the source prompt that the edit "
                                             f"changes (here '{PHOTO_WORD}').") +
        f"\n**Flow Invert** inverts your image with FireFlow ({steps} steps, {scale} 1) and, with layerverse_keep "
        f"'{preset}', keeps the image keys and values of that allocation's blocks at every step (LayerVerse, "
        f"Zhirnov et al.: masked {masked}, global {glob}). **Attention Store** reads where the changed word is "
        "attended on the same inversion: the editing mask. **LayerVerse KV Inject** patches the model: the masked "
        "blocks attend with the source's keys and values outside the mask (the background is kept), the global "
        "blocks everywhere (the object's structure is kept). Sampled by the stock **SamplerCustomAdvanced** with the "
        f"**Flow Sampler** (fireflow), the inversion's NOISE and SIGMAS, target prompt at {scale} {guidance:g}. "
        "For more edit: fewer global blocks, a larger mask, fewer inject_steps; for more keeping: the reverse. The "
        "strip: the image, the mask, the edit without injection, the edit with it.")
    model = flow_model(family)
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFlowInvert",
         "widgets": {"solver": "fireflow", "steps": steps, "scheduler": SCHEDULES[family.name], "guidance": 1.0,
                     "layerverse_keep": preset, "keep_values_on": "device"},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": PHOTO_SOURCE, "words": PHOTO_WORD, "start": 0.0, "end": 1.0, "threshold": 0.3,
                     "dit_blocks": "all", "mask_pool": 3},
         "inputs": {"model": model, "clip": clip_of(family), "inversion": ("invert", 0), "image": ("resize", "IMAGE")},
         "title": f"Attention Store (the editing mask: '{PHOTO_WORD}')"},
        {"key": "layerverse", "type": "InvertEditLayerVerse",
         "widgets": {"preset": preset, "masked_blocks": masked, "global_blocks": glob, "inject_steps": 1000},
         "inputs": {"model": model, "inversion": ("invert", 0), "mask": ("store", "MASK")}},
        {"key": "solver", "type": "InvertEditFlowSampler", "widgets": {"solver": "fireflow"}},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("store", "MASK")}, "title": "The mask"},
    ]
    nodes += flow_sample(family, "plain", model, ("target", 0), guidance, ("invert", "NOISE"), ("invert", "SIGMAS"),
                         ("solver", "SAMPLER"), f"Edit without injection ({scale} {guidance:g})")
    nodes += flow_sample(family, "edit", ("layerverse", "MODEL"), ("target", 0), guidance, ("invert", "NOISE"),
                         ("invert", "SIGMAS"), ("solver", "SAMPLER"), f"Edit with LayerVerse ({scale} {guidance:g})")
    nodes += strip([("resize", "image"), ("mask_image", "mask"), ("plain_decode", "edit without injection"),
                    ("edit_decode", "edit with LayerVerse")],
                   f"invertedit/{family.name.lower()}_layerverse", "Image | mask | FireFlow | FireFlow + LayerVerse")
    return {"nodes": nodes}


def flux_layerverse() -> dict:
    return _layerverse(FLUX)


def sd3_layerverse() -> dict:
    return _layerverse(SD3)


WORKFLOWS = {"Flux - LayerVerse (FireFlow)": flux_layerverse, "SD3 - LayerVerse (FireFlow)": sd3_layerverse}
CHECKPOINT = {
    # the toy flow world (2 double + 4 single blocks): the Flux preset's blocks scaled to its depth (TOY_LAYERVERSE),
    # every block kept (a few MB), the changed word's mask; the template's own 15 FireFlow steps (seconds)
    "Flux - LayerVerse (FireFlow)": (dict(TOY_FLOW, **TOY_FLOW_MAPS, **TOY_LAYERVERSE), {}),
    # the tiny random SD3 (2 joint blocks): the mechanics; fewer steps in the quick run
    "SD3 - LayerVerse (FireFlow)": (dict(DEMO_SD3_LAYERVERSE), {"InvertEditFlowInvert": {"steps": 6}}),
}
