"""EDICT's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import QUICK_TOY_STEPS, STEPS, own_sampler_workflow


def edict_exact_inversion() -> dict:
    intro = (
        "# Exact inversion with EDICT, then an edit\n\n"
        "**EDICT Invert** (Wallace et al.; paper defaults: cfg 3, mixing 0.93, 50 steps, strength 0.8 = start at "
        "step 10) runs two coupled latent sequences backwards. The stock **SamplerCustomAdvanced** with "
        "**DisableNoise**, a **CFGGuider** at the same cfg, the **EDICT Sampler** and EDICT Invert's **SIGMAS** "
        "brings the image back exactly (source prompt) or edits it (target prompt). Two UNet calls a step.")
    invert = {"type": "InvertEditEDICTInvert",
              "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 10, "cfg": 3.0,
                          "mixing": 0.93}}
    return own_sampler_workflow(intro, invert, "InvertEditEDICTSampler", [
        ("rec", "prompt", 3.0, "invertedit/edict_reconstruction", "EDICT reconstruction (exact)"),
        ("edit", "target", 3.0, "invertedit/edict_edit", "EDICT edit (target prompt)")])


WORKFLOWS = {"Toy - EDICT exact inversion": edict_exact_inversion}
QUICK_TOY = {"Toy - EDICT exact inversion": {"InvertEditEDICTInvert": {"steps": QUICK_TOY_STEPS, "start_at_step": 4}}}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - EDICT exact inversion': 'save_edit'}
