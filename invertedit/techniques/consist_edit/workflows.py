"""ConsistEdit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, SD3, Family, PHOTO_SOURCE, PHOTO_TARGET, PHOTO_WORD, SCHEDULES, TOY_FLOW,
                                     clip_of, flow_front, flow_model, setup_note, strip, vae_of)
from ...workflows.toy import SOURCE_NOUN
from . import ROW

PAPER = ROW.settings_of("InvertEditConsistEdit")
#: The authors' real-image script (run_real_sd3.py): 28 steps, guidance 1 (no CFG) inverting and editing
STEPS = 28


def _consist_edit(family: Family, guidance: float) -> dict:
    """Flow Invert (Uni-Inv, the authors' real-image inversion) of the image, ConsistEdit at the authors' real-image
    settings (strength 0.1, mask from the source's attention on the edited word, threshold 0.1), the pair sampled with
    euler on the inversion's SIGMAS."""
    flux = family is FLUX
    scale = f"guidance {guidance:g} (the edit row; the source row keeps the inversion's)" if flux else \
        f"cfg {guidance:g} (the authors' real-image script: no classifier-free guidance)"
    blocks = "its single-stream blocks (the authors' Flux editor)" if flux else "every joint block"
    intro = (
        f"# {family.name}: ConsistEdit, an edit that keeps the structure and the rest of the image\n\n"
        + setup_note(family, "**Source prompt**: a caption of your image; **Target prompt**: that caption with the "
                              "edit (one word swapped; the same token count); both feed ConsistEdit too. Its "
                              "*edit_words*: the edited object's word in the source prompt (the authors' "
                              "edit_object).") +
        f"\n**Flow Invert** inverts your image with Uni-Inv ({STEPS} steps, as the authors' real-image script; sampled "
        f"back with Euler). "
        f"**ConsistEdit** (Yin et al., SIGGRAPH Asia 2025) first reads the source's attention on *edit_words* along "
        f"the inversion (the edit region: the normalised map above {PAPER['mask_threshold']:g}), then patches the model "
        f"so that the source and the edit sample as one pair, the source row following the inversion: in {blocks}, "
        f"the edit's image tokens take the source's queries and keys in the first "
        f"{PAPER['consistency_strength']:g} of the steps (consistency_strength: the structure) and, outside the edit "
        f"region, its queries, keys and values at every step (the background). Raise consistency_strength to keep the "
        f"object's shape (a colour or texture edit), lower mask_threshold to let more of the image change. Sampled by "
        f"the stock **SamplerCustomAdvanced** (euler) with the node's NOISE, the inversion's SIGMAS and the image's "
        f"latent repeated twice (**Repeat Latent Batch**), {scale}; **Latent From Batch** takes the edit (row 1). The "
        f"strip: the image and the edit; the node's edit_region output shows the mask.")
    model = flow_model(family)
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFlowInvert",
         "widgets": {"solver": "uni-inv", "steps": STEPS, "scheduler": SCHEDULES[family.name], "guidance": 1.0},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "consist", "type": "InvertEditConsistEdit",
         "widgets": {"source_prompt": PHOTO_SOURCE, "target_prompt": PHOTO_TARGET, "edit_words": PHOTO_WORD,
                     "consistency_strength": PAPER["consistency_strength"],
                     "mask_threshold": PAPER["mask_threshold"], "guidance": guidance if flux else 3.5,
                     "mask_blocks": "authors", "use_mask": True},
         "inputs": {"model": model, "clip": clip_of(family), "inversion": ("invert", 0)}},
        {"key": "guider", "type": "BasicGuider", "inputs": {"model": ("consist", "MODEL"),
                                                            "conditioning": ("consist", "CONDITIONING")}}
        if flux else
        {"key": "guider", "type": "CFGGuider", "widgets": {"cfg": guidance},
         "inputs": {"model": ("consist", "MODEL"), "positive": ("consist", "CONDITIONING"), "negative": ("empty", 0)}},
        {"key": "pair_latent", "type": "RepeatLatentBatch", "widgets": {"amount": 2},
         "inputs": {"samples": ("encode", "LATENT")}, "title": "Repeat Latent Batch (the pair)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("consist", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("pair_latent", "LATENT")}},
        {"key": "pick", "type": "LatentFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"samples": ("sample", 0)}, "title": "Latent From Batch (the edit)"},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("pick", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/{family.name.lower()}_consist_edit",
                   "Image | ConsistEdit")
    return {"nodes": nodes}


def flux_consist_edit() -> dict:
    return _consist_edit(FLUX, guidance=3.5)   # the host's Flux guidance


def sd3_consist_edit() -> dict:
    return _consist_edit(SD3, guidance=1.0)    # run_real_sd3.py: guidance_scale 1


WORKFLOWS = {"SD3 - ConsistEdit": sd3_consist_edit, "Flux - ConsistEdit": flux_consist_edit}
CHECKPOINT = {
    # the toy flow world's prompts (linked to the node's) and its edited noun; the mask from every block: the toy's
    # single-stream blocks' word maps sit on the image's border (glue.MASK_BLOCKS)
    "Flux - ConsistEdit": (dict(TOY_FLOW, InvertEditConsistEdit={"edit_words": SOURCE_NOUN, "mask_blocks": "all"}),
                           {}),
    "SD3 - ConsistEdit": ({}, {"InvertEditFlowInvert": {"steps": 6}}),
}
