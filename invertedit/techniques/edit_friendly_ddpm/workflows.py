"""Edit-friendly DDPM's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import QUICK_TOY_STEPS, own_sampler_workflow


def ddpm_edit_friendly() -> dict:
    intro = (
        "# Edit-friendly DDPM inversion, then an edit\n\n"
        "**Edit-Friendly DDPM Invert** (Huberman-Spiegelglas et al.; paper defaults: 100 steps, skip 36, source "
        "cfg 3.5) stores one noise map per step. The stock **SamplerCustomAdvanced** with **DisableNoise**, the "
        "**Edit-Friendly DDPM Sampler** and the inversion's **SIGMAS** gives the image back exactly with the source "
        "prompt at cfg 3.5, and edits it with the target prompt at cfg 15 (paper) while the noise maps keep its "
        "structure.")
    invert = {"type": "InvertEditDDPMInvert",
              "widgets": {"steps": 100, "scheduler": "ddim_uniform", "start_at_step": 36, "cfg": 3.5, "seed": 0}}
    return own_sampler_workflow(intro, invert, "InvertEditDDPMSampler", [
        ("rec", "prompt", 3.5, "invertedit/ddpm_reconstruction", "Reconstruction (source prompt, cfg 3.5): exact"),
        ("edit", "target", 15.0, "invertedit/ddpm_edit", "Edit (target prompt, cfg 15)")])


WORKFLOWS = {"Toy - Edit-friendly DDPM inversion": ddpm_edit_friendly}
QUICK_TOY = {"Toy - Edit-friendly DDPM inversion": {"InvertEditDDPMInvert": {"steps": 2 * QUICK_TOY_STEPS, "start_at_step": 14}}}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Edit-friendly DDPM inversion': 'save_edit'}
