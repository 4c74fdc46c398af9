"""Fixed-point inversion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import (EDIT_CFG, TARGET_PROMPT, TOY_NOTE, decode_and_save, inversion_nodes, ksampler_advanced,
                              vae_roundtrip)


FIXED_POINT_STEPS = 4   # ReNoise's code default; on the toy model the fixed point then beats 50-step DDIM


def fixed_point_invert_edit() -> dict:
    steps = FIXED_POINT_STEPS
    intro = (
        f"# Fixed-point inversion in {steps} steps, then an edit\n\n"
        "**Fixed-Point Invert** (ReNoise, Garibi et al.; fixed-point inversion, Meiri et al.; AIDI, Pan et al.) "
        "inverts like DDIM Invert, but at every step re-evaluates the model at its estimate of the next latent and "
        "iterates (ReNoise's defaults: 9 iterations, the last 2 estimates averaged; 5 estimates, all averaged, below "
        "timestep 250), so each step is the exact inverse of the sampler's step. In "
        f"{steps} steps it costs {5 + 10 * (steps - 1)} model evaluations and reconstructs better than DDIM at 50 "
        "steps (docs/measurements.md). The stock **KSampler (Advanced)** samples it as after DDIM Invert: add_noise "
        f"*disable*, the same {steps} steps, scheduler and start step, sampler *ddim*. Beside it, **DDIM Invert** at "
        f"the same {steps} steps, which drifts; and the naive edit (target prompt, cfg 5) from the fixed-point "
        "latent.\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] not in ("invert", "apply")]
    few = {"steps": steps, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0}
    nodes += [
        {"key": "invert", "type": "InvertEditFixedPointInvert",
         "widgets": dict(few, iterations=9, average=2, low_noise_rule=True, anderson=0),
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0)}},
        {"key": "ddim", "type": "InvertEditDDIMInvert", "widgets": dict(few),
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)},
         "title": f"DDIM Invert at the same {steps} steps (for comparison)"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
    ]
    samplers = [ksampler_advanced("sample", "prompt"),
                ksampler_advanced("sample_ddim", "prompt", latent=("ddim", "LATENT"), model="model"),
                ksampler_advanced("edit", "target", negative="empty", cfg=EDIT_CFG)]
    for sampler in samplers:
        sampler["widgets"]["steps"] = steps
    nodes += samplers
    nodes += decode_and_save("rec", "sample", "invertedit/fixed_point_reconstruction",
                             f"Fixed-point reconstruction ({steps} steps)")
    nodes += decode_and_save("ddim", "sample_ddim", "invertedit/fixed_point_ddim_same_steps",
                             f"DDIM reconstruction at the same {steps} steps (drifts)")
    nodes += decode_and_save("edit", "edit", "invertedit/fixed_point_edit_naive",
                             f"Naive edit from the fixed-point latent (target prompt, cfg {EDIT_CFG:g})")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - Fixed-point inversion": fixed_point_invert_edit}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Fixed-point inversion': 'save_edit'}
