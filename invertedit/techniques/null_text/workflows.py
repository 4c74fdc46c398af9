"""Null-text inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import P2P_SETTINGS, PROMPTS_P2P, QUICK_DDIM, SD15, TOY_P2P, checkpoint_front, p2p_inject, setup_note
from ...workflows.toy import (QUICK_TOY_DDIM, STEPS, TOY_NOTE, decode_pair, inversion_nodes, pair_sampler, toy_inject, vae_roundtrip)


def null_text_inversion_edit() -> dict:
    intro = (
        "# Null-text inversion + Prompt-to-Prompt, at cfg 7.5\n\n"
        "The paper's pipeline (Mokady et al.): **DDIM Invert** (cfg 1), then **Null-Text Optimize** (paper "
        "defaults: cfg 7.5, 10 Adam steps per timestep, lr 0.01, early stop) learns one null-text embedding per "
        "step so that sampling at cfg 7.5 follows the inversion. **Attention Inject** (Prompt-to-Prompt replace; "
        "cross-attention injected for 0.8 of the steps, self-attention for 0.4) gives the target prompt's branch "
        "the source's attention maps, and **Apply Inversion** puts the learned embeddings into the negative: one "
        "stock **KSampler (Advanced)** run at cfg 7.5 with the same empty negative samples the pair, the "
        "reconstruction (row 0) and the edit (row 1). **Save Inversion** keeps the optimised embeddings: optimise "
        "once, edit many times.\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] != "apply"]
    nodes += [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "null_text", "type": "InvertEditNullTextOptimize",
         "widgets": {"cfg": 7.5, "inner_steps": 10, "learning_rate": 0.01, "early_stop": True},
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0), "positive": ("prompt", 0),
                    "negative": ("empty", 0)}},
        toy_inject(),
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("null_text", 0)}},
        pair_sampler(7.5),
        {"key": "save_inversion", "type": "InvertEditSaveInversion", "widgets": {"filename_prefix": "inversions/null_text"},
         "inputs": {"inversion": ("null_text", 0)}},
    ]
    nodes += decode_pair("sample", "invertedit/null_text_p2p")
    return {"nodes": nodes + vae_roundtrip()}


def sd15_null_text_edit() -> dict:
    family = SD15
    intro = (
        f"# {family.name}: Null-text inversion + Prompt-to-Prompt\n\n"
        + setup_note(family, PROMPTS_P2P) +
        f"\nThe paper's pipeline (Mokady et al.): **DDIM Invert** (cfg 1, {STEPS} steps), then **Null-Text Optimize** "
        "(cfg 7.5, 10 Adam steps per timestep, lr 0.01, early stop) learns one empty-prompt embedding per step so that "
        "sampling at cfg 7.5 follows the inversion. It is the slow part: up to 500 extra UNet passes with gradients "
        "(about a minute for SD1.5 on a recent GPU). " + P2P_SETTINGS + " **Apply Inversion** puts the learned "
        "embeddings into the negative; one stock **KSampler (Advanced)** run (cfg 7.5, the same empty negative) "
        "samples the pair: reconstruction (row 0) and edit (row 1).\n\n"
        "**Save Inversion** keeps the optimised embeddings (`output/inversions/`): optimise once, then edit "
        "many times with **Load Inversion** instead of the three nodes before it.")
    nodes = checkpoint_front(family, intro) + [
        {"key": "null_text", "type": "InvertEditNullTextOptimize",
         "widgets": {"cfg": 7.5, "inner_steps": 10, "learning_rate": 0.01, "early_stop": True},
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0), "positive": ("prompt", 0),
                    "negative": ("empty", 0)}},
        p2p_inject(),
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("null_text", 0)}},
        pair_sampler(7.5),
        {"key": "save_inversion", "type": "InvertEditSaveInversion",
         "widgets": {"filename_prefix": "inversions/sd15_null_text"},
         "inputs": {"inversion": ("null_text", 0)}, "title": "Save Inversion (edit again later: Load Inversion)"},
    ]
    nodes += decode_pair("sample", "invertedit/null_text_p2p")
    return {"nodes": nodes}


WORKFLOWS = {"Toy - Null-text inversion and edit": null_text_inversion_edit,
             "SD1.5 - Null-text inversion and edit": sd15_null_text_edit}
CHECKPOINT = {"SD1.5 - Null-text inversion and edit": (TOY_P2P, dict(QUICK_DDIM,
                                                                      InvertEditNullTextOptimize={"inner_steps": 2}))}
# Null-Text Optimize 5 inner steps instead of 10 in the tests' run
QUICK_TOY = {"Toy - Null-text inversion and edit": dict(QUICK_TOY_DDIM, InvertEditNullTextOptimize={"inner_steps": 5})}
