"""Noise Map Guidance's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import EDIT_CFG, QUICK_TOY_STEPS, SOURCE_PROMPT, TARGET_PROMPT, TOY, TOY_NOTE, guided_pair_workflow


# Noise Map Guidance's gradient scale is the paper's 5000 for a 64x64 latent; its distance is a mean
# over the latent's elements, so a smaller latent (n x n) takes 5000 * n * n / (64 * 64).
NMG_GRAD_SCALE = 5000.0 * (TOY["size"] // 8) ** 2 / (64 * 64)


def noise_map_guidance_edit() -> dict:
    intro = (
        "# Noise Map Guidance with Prompt-to-Prompt\n\n"
        "**DDIM Invert** keeps every step's latent: NMG's noise maps. **Attention Inject** (Prompt-to-Prompt, "
        "PIE-Bench settings: cross-attention 0.4, self-attention 0.6) makes the pair, and **Noise Map Guidance** "
        "(Cho et al.), a GUIDER for the stock **SamplerCustomAdvanced**, keeps the source on the inversion at every "
        "step: an unconditional pass differentiated towards the next noise map (scale 10, L1), then "
        "classifier-free guidance from there. No optimisation; one extra pass with its gradient per step. Sampler "
        "ddim, the inversion's SIGMAS, the editor's LATENT pair; the saved batch holds the reconstruction and the "
        "edit.\n\n"
        "Gradient scale: the paper's 5000, for a 64x64 latent (512 px SD1.5, as this toy world); a smaller latent "
        "takes less (the distance is a mean over its elements). Text guidance 5 here (paper: 10, for real "
        "checkpoints).\n\n" + TOY_NOTE)
    editor = {"type": "InvertEditAttentionInject",
              "widgets": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT, "mode": "replace",
                          "reweight": "", "cross_replace": 0.4, "self_replace": 0.6}}
    guider = {"type": "InvertEditNoiseMapGuidance",
              "widgets": {"cfg": EDIT_CFG, "noise_map_scale": 10.0, "grad_scale": NMG_GRAD_SCALE, "loss": "l1"}}
    return guided_pair_workflow(intro, [], editor, guider, "invertedit/noise_map_guidance")


WORKFLOWS = {"Toy - Noise Map Guidance edit": noise_map_guidance_edit}
QUICK_TOY = {"Toy - Noise Map Guidance edit": {"InvertEditDDIMInvert": {"steps": QUICK_TOY_STEPS}}}
