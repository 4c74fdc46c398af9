"""DDIM inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import Family, PHOTO_TARGET, PROMPTS_PLAIN, QUICK_DDIM, SD15, SDXL, TOY_PROMPTS, checkpoint_front, setup_note
from ...workflows.toy import (EDIT_CFG, STEPS, TARGET_PROMPT, TOY_NOTE, decode_and_save, inversion_nodes,
                              ksampler_advanced, vae_roundtrip)


def ddim_invert_edit() -> dict:
    intro = (
        "# DDIM inversion: reconstruction and a prompt edit\n\n"
        "The image is encoded, inverted to noise with **DDIM Invert** (source prompt, 50 steps, ddim_uniform), "
        "and sampled back twice with a stock **KSampler (Advanced)**: add_noise *disable*, the same steps, "
        "scheduler and start step, sampler *ddim*. With the source prompt at cfg 1 it reconstructs the image "
        "(compare with the VAE round trip); with the target prompt at cfg 5 (empty negative) it is the plain, "
        "naive edit, which the pack's editors (attention injection, latent blending) make local.\n\n" + TOY_NOTE)
    return {"nodes": inversion_nodes(intro) + [
        ksampler_advanced("sample", "prompt"),
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/reconstruction"},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "Reconstruction (source prompt)"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        ksampler_advanced("edit", "target", negative="empty", cfg=EDIT_CFG),
        {"key": "decode_edit", "type": "VAEDecode", "inputs": {"samples": ("edit", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save_edit", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/edit_naive"},
         "inputs": {"images": ("decode_edit", "IMAGE")}, "title": "Naive edit (target prompt, cfg 5)"},
        {"key": "save_inversion", "type": "InvertEditSaveInversion", "widgets": {"filename_prefix": "inversions/sample"},
         "inputs": {"inversion": ("invert", 0)}, "title": "Save Inversion (edit again later: Load Inversion)"},
    ] + vae_roundtrip()}


def ddim_invert_custom_sampler() -> dict:
    intro = (
        "# DDIM inversion, reconstructed with SamplerCustomAdvanced\n\n"
        "The same inversion, sampled back with the custom sampler nodes: **DisableNoise**, **CFGGuider** (cfg 1), "
        "**KSamplerSelect** (ddim) and the **SIGMAS** output of DDIM Invert (the schedule from the inverted latent "
        "back to the image).\n\n"
        + TOY_NOTE)
    return {"nodes": inversion_nodes(intro) + [
        {"key": "noise", "type": "DisableNoise"},
        {"key": "guider", "type": "CFGGuider", "widgets": {"cfg": 1.0},
         "inputs": {"model": ("apply", "MODEL"), "positive": ("prompt", 0), "negative": ("prompt", 0)}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("invert", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": ("model", "VAE")}},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/reconstruction_custom"},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "Reconstruction"},
    ] + vae_roundtrip()}


def _ddim_edit(family: Family, cfg: float) -> dict:
    intro = (
        f"# {family.name}: DDIM inversion, reconstruction and a prompt edit\n\n"
        + setup_note(family, PROMPTS_PLAIN) +
        f"\nYour image is encoded, inverted to noise with **DDIM Invert** (source prompt, cfg 1, {STEPS} steps, "
        "ddim_uniform) and sampled back by the stock **KSampler (Advanced)** (add_noise disable, the same steps and "
        "scheduler, sampler ddim) through **Apply Inversion** (it refuses mismatched settings with a message). "
        f"With the source prompt at cfg 1 it reconstructs the image (compare with the VAE round trip); with the "
        f"target prompt at cfg {cfg:g} (empty negative) it is the plain, naive edit: the whole image may change. "
        "Raise cfg to follow the target more, at the cost of the image (plain DDIM inversion drifts under "
        "guidance); for a local edit at cfg 7.5 use the Prompt-to-Prompt workflow.\n\n"
        "**Save Inversion** writes `output/inversions/`: **Load Inversion** lists it, so you can edit again "
        "without inverting.")
    nodes = checkpoint_front(family, intro) + [
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0)}},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_TARGET},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        ksampler_advanced("sample", "prompt"),
        ksampler_advanced("edit", "target", negative="empty", cfg=cfg),
        {"key": "save_inversion", "type": "InvertEditSaveInversion",
         "widgets": {"filename_prefix": f"inversions/{family.name.lower().replace('.', '')}"},
         "inputs": {"inversion": ("invert", 0)}, "title": "Save Inversion (edit again later: Load Inversion)"},
    ]
    nodes += decode_and_save("rec", "sample", "invertedit/reconstruction", "Reconstruction (source prompt, cfg 1)")
    nodes += decode_and_save("edit", "edit", "invertedit/edit_naive", f"Naive edit (target prompt, cfg {cfg:g})")
    return {"nodes": nodes + vae_roundtrip()}


def sd15_ddim_edit() -> dict:
    return _ddim_edit(SD15, cfg=5.0)


def sdxl_ddim_edit() -> dict:
    return _ddim_edit(SDXL, cfg=5.0)


WORKFLOWS = {"Toy - DDIM inversion and edit": ddim_invert_edit, "Toy - DDIM inversion with the custom sampler": ddim_invert_custom_sampler,
             "SD1.5 - DDIM inversion and edit": sd15_ddim_edit, "SDXL - DDIM inversion and edit": sdxl_ddim_edit}
# the checkpoint workflows' (toy overrides, quick overrides): see invertedit/workflows/checkpoint.py
CHECKPOINT = {"SD1.5 - DDIM inversion and edit": (TOY_PROMPTS, QUICK_DDIM),
              "SDXL - DDIM inversion and edit": (TOY_PROMPTS, QUICK_DDIM)}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures): the reconstruction,
# what an inversion gives; the naive edit beside it is previewed, to show what a plain prompt change redraws
RESULTS = {"Toy - DDIM inversion and edit": "save", "SD1.5 - DDIM inversion and edit": "save_rec",
           "SDXL - DDIM inversion and edit": "save_rec"}
