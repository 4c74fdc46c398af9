"""Latent Blend's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import (EDIT_CFG, TOY_WORLD, TOY_WORLDS, decode_pair, inversion_nodes, pair_sampler,
                              swapped, toy_note, vae_roundtrip)


def local_edit_blend(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    source, target = w["source"], w["target"]
    _, source_word, target_word = swapped(source, target)
    intro = (
        "# A local edit: Prompt-to-Prompt + Latent Blend\n\n"
        "**DiffEdit Mask** (Couairon et al.; paper defaults: strength 0.5, 10 noises, threshold 0.5) "
        f"finds where '{source_word}' -> '{target_word}' "
        "changes the image. **Latent Blend** (Blended Latent Diffusion; Prompt-to-Prompt's local blend) keeps the "
        "target on the source outside that mask at every step, so the background is the source's, bit for bit; "
        "**Attention Inject** keeps the layout inside it. The masks used are saved too.\n\n" + toy_note(world))
    nodes = [n for n in inversion_nodes(intro, world) if n["key"] != "apply"] + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": target},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "diffedit", "type": "InvertEditDiffEditMask",
         "widgets": {"strength": 0.5, "samples": 10, "threshold": 0.5, "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "source": ("prompt", 0),
                    "target": ("target", 0)}},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        {"key": "inject", "type": "InvertEditAttentionInject",
         "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                     "cross_replace": 0.8, "self_replace": 0.4},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")}},
        {"key": "blend", "type": "InvertEditLatentBlend", "widgets": {"start": 0.0, "end": 1.0},
         "inputs": {"model": ("inject", "MODEL"), "latent": ("inject", "LATENT"), "mask": ("diffedit", "MASK")}},
        {"key": "apply", "type": "InvertEditApplyInversion", "inputs": {"model": ("blend", "MODEL"), "inversion": ("direct", 0)}},
        pair_sampler(EDIT_CFG),
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("blend", "MASK")}},
        {"key": "save_mask", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/blend_mask"},
         "inputs": {"images": ("mask_image", "IMAGE")}, "title": "The mask Latent Blend used"},
    ]
    nodes += decode_pair("sample", "invertedit/local_edit")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - Local edit with Latent Blend": local_edit_blend}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Local edit with Latent Blend': 'save_pair'}
