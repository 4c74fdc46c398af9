"""Negative-Prompt Inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import QUICK_TOY_DDIM, decode_and_save, inversion_nodes, ksampler_advanced, vae_roundtrip


def inversion_under_guidance() -> dict:
    intro = (
        "# Reconstruction under classifier-free guidance (cfg 7.5)\n\n"
        "Plain DDIM inversion drifts once guidance is on. Two fixes that cost no extra UNet call, applied by "
        "**Apply Inversion** to the stock **KSampler (Advanced)** (cfg 7.5, empty negative prompt):\n\n"
        "- **Negative-Prompt Inversion** (Miyake et al.): the source prompt replaces the negative; the guided "
        "prediction equals the one the inversion followed.\n"
        "- **Direct Inversion** (Ju et al., PnP Inversion): the source branch is put back on the inversion "
        "trajectory at every step; exact reconstruction (sampler ddim or euler).\n\n"
        "Compare the three saved images with the VAE round trip.")
    nodes = inversion_nodes(intro)
    nodes += [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        ksampler_advanced("plain", "prompt", negative="empty", cfg=7.5),
        {"key": "npi", "type": "InvertEditNegativePromptInversion",
         "inputs": {"inversion": ("invert", 0), "positive": ("prompt", 0)}},
        {"key": "apply_npi", "type": "InvertEditApplyInversion", "inputs": {"model": ("model", "MODEL"), "inversion": ("npi", 0)}},
        ksampler_advanced("sample_npi", "prompt", model="apply_npi", negative="empty", cfg=7.5),
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        {"key": "apply_direct", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("direct", 0)}},
        ksampler_advanced("sample_direct", "prompt", model="apply_direct", negative="empty", cfg=7.5),
    ]
    nodes += decode_and_save("plain", "plain", "invertedit/cfg7.5_ddim", "DDIM inversion at cfg 7.5 (drifts)")
    nodes += decode_and_save("npi", "sample_npi", "invertedit/cfg7.5_negative_prompt", "Negative-prompt inversion, cfg 7.5")
    nodes += decode_and_save("direct", "sample_direct", "invertedit/cfg7.5_direct", "Direct inversion, cfg 7.5 (exact)")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - Inversion under guidance": inversion_under_guidance}
QUICK_TOY = {"Toy - Inversion under guidance": QUICK_TOY_DDIM}   # invertedit/workflows/toy.py: fewer steps for the tests
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Inversion under guidance': 'save_direct'}
