"""Prompt-to-Prompt's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (Family, P2P_SETTINGS, PROMPTS_P2P, QUICK_DDIM, SD15, SDXL, TOY_P2P, checkpoint_front, p2p_inject, setup_note, strip)
from ...workflows.toy import (EDIT_CFG, SOURCE_NOUN, STEPS, TARGET_NOUN, TARGET_PROMPT, TOY_NOTE, decode_pair,
                              inversion_nodes, ksampler_advanced, pair_sampler, toy_inject, vae_roundtrip)


def invert_and_edit() -> dict:
    """The main job: the pack's best edit on the built-in model, beside what it improves on."""
    intro = (
        "# Invert and edit: what this pack is for\n\n"
        "The saved strip reads left to right: **the image**, its **reconstruction** from the inversion, the "
        "**naive edit** (the target prompt sampled from the inverted noise, cfg 5) and **the pack's edit**. "
        "The naive edit redraws the whole scene: the other object and the background move or change. The "
        "pack's edit changes only the circle's colour.\n\n"
        "How: **DDIM Invert** (source prompt, 50 steps) and **Direct Inversion** keep the source branch on the "
        "inversion's trajectory; **Attention Inject** (Prompt-to-Prompt, Hertz et al.: replace, cross-attention "
        "0.8 and self-attention 0.4 of the steps) gives the target branch the source's attention maps, and its "
        f"local blend on '{SOURCE_NOUN}' (threshold 0.3, from 0.2 of the steps) keeps everything outside the "
        "word's attention on the source. One stock **KSampler (Advanced)** run samples source and target "
        "together. On the toy world 2 benchmark (100 edits; docs/measurements.md) this editor keeps the other "
        "object in 88% of edits against 45% for the naive edit, and the background 35.3 dB from its "
        "reconstruction against 26.1 dB.\n\n" + TOY_NOTE)
    nodes = inversion_nodes(intro) + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        ksampler_advanced("naive", "target", negative="empty", cfg=EDIT_CFG),
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        dict(toy_inject(), widgets=dict(toy_inject()["widgets"], blend_source_words=SOURCE_NOUN,
                                         blend_target_words=TARGET_NOUN, blend_threshold=0.3, blend_start=0.2)),
        {"key": "apply_edit", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("direct", 0)}},
        dict(pair_sampler(EDIT_CFG), inputs=dict(pair_sampler(EDIT_CFG)["inputs"], model=("apply_edit", "MODEL"))),
        {"key": "decode_naive", "type": "VAEDecode", "inputs": {"samples": ("naive", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "decode_pair", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "reconstruction", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": "Reconstruction (row 0)"},
        {"key": "edit", "type": "ImageFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": "Edit (row 1)"},
    ]
    nodes += strip([("image", "image"), ("reconstruction", "reconstruction"), ("decode_naive", "naive edit"),
                     ("edit", "edit")], "invertedit/invert_and_edit", "Image | reconstruction | naive edit | the pack's edit")
    return {"nodes": nodes}


def p2p_replace_edit() -> dict:
    intro = (
        "# Prompt-to-Prompt on the inverted image (replace)\n\n"
        "**DDIM Invert** and **Direct Inversion** (the source row stays exactly on its trajectory), then "
        "**Attention Inject** (Hertz et al.; paper defaults: cross-attention maps injected for 0.8 of the steps, "
        "self-attention for 0.4) gives the target prompt's branch the source branch's attention maps. One stock "
        "**KSampler (Advanced)** run samples the pair (row 0 source, row 1 target); the saved batch shows the "
        "reconstruction and the edit side by side.\n\n" + TOY_NOTE)
    nodes = inversion_nodes(intro)
    nodes = [n for n in nodes if n["key"] != "apply"] + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        toy_inject(),
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("direct", 0)}},
        pair_sampler(EDIT_CFG),
    ]
    nodes += decode_pair("sample", "invertedit/p2p_replace")
    return {"nodes": nodes + vae_roundtrip()}


def _p2p_edit(family: Family) -> dict:
    intro = (
        f"# {family.name}: Direct Inversion + Prompt-to-Prompt, a local edit\n\n"
        + setup_note(family, PROMPTS_P2P) +
        f"\n**DDIM Invert** (source prompt, cfg 1, {STEPS} steps), **Direct Inversion** (the source row stays exactly "
        "on the inversion's trajectory: the reconstruction is exact at any cfg), " + P2P_SETTINGS + " One stock "
        f"**KSampler (Advanced)** run (cfg 7.5, {STEPS} steps, ddim, empty negative) samples the pair: the saved "
        "batch is the reconstruction (row 0) and the edit (row 1).")
    nodes = checkpoint_front(family, intro) + [
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        p2p_inject(),
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("direct", 0)}},
        pair_sampler(7.5),
    ]
    nodes += decode_pair("sample", "invertedit/p2p_edit")
    return {"nodes": nodes}


def sd15_p2p_edit() -> dict:
    return _p2p_edit(SD15)


def sdxl_p2p_edit() -> dict:
    return _p2p_edit(SDXL)


def sd15_p2p_edit_one_node() -> dict:
    """The SD1.5 Prompt-to-Prompt edit with its inversion, edit and decoding in one subgraph node (issue 79):
    on the canvas the model, the image, the prompts, the node and the results."""
    return dict(sd15_p2p_edit(), subgraph={
        "name": "Prompt-to-Prompt edit",
        "description": (
            "# Prompt-to-Prompt edit, inside\n\n"
            "**VAE Encode** of your image, **DDIM Invert** (the source prompt, cfg 1), **Direct Inversion** (the "
            "source row stays on the inversion: an exact reconstruction), **Attention Inject** (Prompt-to-Prompt "
            "replace, local blend on the blend words), **Apply Inversion**, one **KSampler (Advanced)** run of the "
            "pair (source and edit) and **VAE Decode**; the reconstruction and the edit go out.\n\n"
            "The settings changed most are on the node outside (the target prompt, the blend words, the "
            "cross/self replace fractions, cfg); the others are here. Back to the workflow: the breadcrumb above."),
        "promote": [("inject", "source_prompt"), ("inject", "target_prompt"), ("inject", "blend_source_words"),
                    ("inject", "blend_target_words"), ("inject", "cross_replace"), ("inject", "self_replace"),
                    ("sample", "cfg")],
        "labels": {"pixels": "image", "positive": "source", "IMAGE": "reconstruction", "IMAGE_1": "edit"}})


WORKFLOWS = {"Start here - Invert and edit": invert_and_edit, "Toy - Prompt-to-Prompt replace": p2p_replace_edit,
             "SD1.5 - Prompt-to-Prompt edit": sd15_p2p_edit, "SDXL - Prompt-to-Prompt edit": sdxl_p2p_edit,
             "SD1.5 - Prompt-to-Prompt edit (one node)": sd15_p2p_edit_one_node}
CHECKPOINT = {"SD1.5 - Prompt-to-Prompt edit": (TOY_P2P, QUICK_DDIM), "SDXL - Prompt-to-Prompt edit": (TOY_P2P, QUICK_DDIM)}
CHECKPOINT["SD1.5 - Prompt-to-Prompt edit (one node)"] = CHECKPOINT["SD1.5 - Prompt-to-Prompt edit"]
