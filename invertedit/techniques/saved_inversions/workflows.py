"""Saved inversions's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import EDIT_CFG, MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT, ksampler_advanced


def load_inversion_edit() -> dict:
    intro = (
        "# Edit from a saved inversion\n\n"
        "**Load Inversion** reads an inversion saved by **Save Inversion** (here the pack's bundled "
        "`sample_inversion.safetensors`: the sample image inverted with the Toy World Model, 50 steps, "
        "ddim_uniform). No image and no inversion run are needed: **Apply Inversion** checks that the model, "
        "steps and size match, and the stock **KSampler (Advanced)** reconstructs (source prompt) or edits "
        "(target prompt).\n\nTry another checkpoint or 25 steps: Apply Inversion refuses with a message.")
    return {"nodes": [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, title="Toy World Model (the model the inversion was made with)"),
        {"key": "load", "type": "InvertEditLoadInversion", "widgets": {"inversion": "sample_inversion.safetensors"}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("load", 0)}},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": SOURCE_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Source prompt"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        ksampler_advanced("sample", "prompt", latent=("load", "LATENT")),
        ksampler_advanced("edit", "target", latent=("load", "LATENT"), negative="empty", cfg=EDIT_CFG),
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/loaded_reconstruction"},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "Reconstruction (source prompt)"},
        {"key": "decode_edit", "type": "VAEDecode", "inputs": {"samples": ("edit", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save_edit", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/loaded_edit_naive"},
         "inputs": {"images": ("decode_edit", "IMAGE")}, "title": "Naive edit (target prompt, cfg 5)"},
    ]}


WORKFLOWS = {"Toy - Load a saved inversion": load_inversion_edit}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {"Toy - Load a saved inversion": "save"}   # the reconstruction from the file
