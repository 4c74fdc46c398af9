"""Proximal guidance's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import EDIT_CFG, SOURCE_PROMPT, TARGET_PROMPT, TOY_NOTE, guided_pair_workflow


def proximal_guidance_edit() -> dict:
    intro = (
        "# ProxEdit: proximal guidance with Prompt-to-Prompt\n\n"
        "**DDIM Invert** and **Negative-Prompt Inversion** (the source prompt becomes the negative), **Attention "
        "Inject** (Prompt-to-Prompt replace: cross-attention injected for 0.8 of the steps, self-attention for "
        "0.4), then **Proximal Guidance** (Han et al., ProxEdit), a GUIDER for the stock **SamplerCustomAdvanced**: "
        "the guidance term is shrunk by the 0.7 quantile of its magnitude (l0), so where the edit is weak the "
        "target follows the source, and below timestep 400 whatever the edit does not touch is put back on the "
        "inversion trajectory (the paper's ProxNPI recipe). Sampler ddim, the inversion's SIGMAS, Attention "
        "Inject's LATENT pair; the saved batch holds the reconstruction and the edit.\n\n"
        "ProxMasaCtrl, for changes of shape: swap Attention Inject for **Mutual Self-Attention (MasaCtrl)** and "
        "set quantile 0.6 over the target, pull none (as its code runs).\n\n" + TOY_NOTE)
    inversion = [{"key": "npi", "type": "InvertEditNegativePromptInversion",
                  "inputs": {"inversion": ("invert", 0), "positive": ("prompt", 0)}}]
    editor = {"type": "InvertEditAttentionInject",
              "widgets": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT, "mode": "replace",
                          "reweight": "", "cross_replace": 0.8, "self_replace": 0.4}}
    guider = {"type": "InvertEditProximalGuidance",
              "widgets": {"cfg": EDIT_CFG, "prox": "l0", "quantile": 0.7, "quantile_over": "pair", "start_step": 0,
                          "pull": "inversion", "recon_lr": 1.0, "recon_t": 400.0, "dilate_mask": 1}}
    return guided_pair_workflow(intro, inversion, editor, guider, "invertedit/proximal_guidance")


WORKFLOWS = {"Toy - Proximal Guidance edit": proximal_guidance_edit}
