"""SDEdit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import EDIT_CFG, STEPS, TARGET_PROMPT, TOY_NOTE, decode_and_save, inversion_nodes, vae_roundtrip


SDEDIT_DENOISE = 0.6   # SDEdit's t0 (Meng et al.): typically 0.5-0.6 of the way to noise for a real image


def sdedit_baseline() -> dict:
    intro = (
        "# SDEdit: the baseline without inversion\n\n"
        "SDEdit (Meng et al.) noises the image part of the way to pure noise (t0) and denoises it with the target "
        "prompt. That is what the stock **KSampler** does with **denoise** below 1: here "
        f"{SDEDIT_DENOISE:g}, in the paper's usual range of t0 = 0.5-0.6 for real images (lower keeps more of the "
        "image and edits less; higher edits more and keeps less). No inversion, no extra UNet call; the structure "
        "survives only as far as the noise leaves it, which is what the inversion-based workflows improve on. Change "
        "the seed for another draw.\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] not in ("invert", "apply", "prompt")]
    nodes += [
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "sdedit", "type": "KSampler",
         "widgets": {"seed": 0, "steps": STEPS, "cfg": EDIT_CFG, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                     "denoise": SDEDIT_DENOISE},
         "inputs": {"model": ("model", "MODEL"), "positive": ("target", 0), "negative": ("empty", 0),
                    "latent_image": ("encode", "LATENT")},
         "title": f"KSampler = SDEdit (denoise {SDEDIT_DENOISE:g}: t0)"},
    ]
    nodes += decode_and_save("sdedit", "sdedit", "invertedit/sdedit",
                             f"SDEdit (target prompt, denoise {SDEDIT_DENOISE:g}, cfg {EDIT_CFG:g})")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - SDEdit baseline": sdedit_baseline}
