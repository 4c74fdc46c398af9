"""DNAEdit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, PROMPTS_PLAIN, SCHEDULES, SD3, TOY_FLOW, Family, flow_front, flow_model,
                                     setup_note, strip, vae_of)

#: The authors' settings (xiechenxi99/DNAEdit_code, configs/DNAEdit_FLUX_exp.yaml and DNAEdit_SD3_exp.yaml)
AUTHORS = {"Flux": {"steps": 28, "start_step": 4, "guidance": 2.5, "mvg": 0.8},
           "SD3": {"steps": 40, "start_step": 13, "guidance": 3.5, "mvg": 0.8}}


def _dnaedit(family: Family) -> dict:
    flux = family is FLUX
    s = AUTHORS[family.name]
    guidance = "Flux's distilled guidance" if flux else "classifier-free guidance, with the empty negative"
    intro = (
        f"# {family.name}: DNAEdit, inversion by direct noise alignment and Mobile Velocity Guidance\n\n"
        + setup_note(family, PROMPTS_PLAIN) +
        f"\n**DNAEdit Invert** (Xie et al.) inverts your image up the schedule to its start_step: each step evaluates "
        "the model on a guess of the next latent made from a Gaussian noise (its seed), and moves the noise by the "
        "velocity's error. **DNAEdit** then edits from there, one target evaluation a step where the inversion "
        "evaluated the source, blending the target's velocity (mvg) with the velocity that lands on the source moved "
        f"by the velocity difference. The authors' {family.name} settings: {s['steps']} steps, start_step "
        f"{s['start_step']}, guidance {s['guidance']:g} ({guidance}), mvg {s['mvg']:g}. Raise mvg or lower "
        "start_step to edit more; lower mvg or raise start_step to keep more of the image. Sampled by the stock "
        "**SamplerCustomAdvanced** with euler and DNAEdit Invert's NOISE and SIGMAS"
        + (" (the schedule: **ModelSamplingFlux** at the image's size)." if flux else ".")
        + " The strip shows the image and the edit.")
    model = flow_model(family)
    edit_inputs = {"model": model, "inversion": ("invert", "INVERSION"), "target": ("target", 0)}
    if not flux:
        edit_inputs["negative"] = ("empty", 0)
    nodes = flow_front(family, intro) + [
        {"key": "scheduler", "type": "BasicScheduler",
         "widgets": {"scheduler": SCHEDULES[family.name], "steps": s["steps"], "denoise": 1.0},
         "inputs": {"model": model}, "title": f"BasicScheduler (the authors' {family.name} schedule)"},
        {"key": "invert", "type": "InvertEditDNAEditInvert",
         "widgets": {"start_step": s["start_step"], "guidance": 1.0, "seed": 0, "align_noise": True},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0),
                    "sigmas": ("scheduler", "SIGMAS")}},
        {"key": "dnaedit", "type": "InvertEditDNAEdit", "widgets": {"mvg": s["mvg"], "guidance": s["guidance"]},
         "inputs": edit_inputs},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("invert", "NOISE"), "guider": ("dnaedit", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/dnaedit_{family.name.lower()}",
                   "Image | DNAEdit")
    return {"nodes": nodes}


def flux_dnaedit() -> dict:
    return _dnaedit(FLUX)


def sd3_dnaedit() -> dict:
    return _dnaedit(SD3)


WORKFLOWS = {"Flux - DNAEdit": flux_dnaedit, "SD3 - DNAEdit": sd3_dnaedit}
CHECKPOINT = {"Flux - DNAEdit": (TOY_FLOW, {}),
              "SD3 - DNAEdit": ({}, {"BasicScheduler": {"steps": 6}, "InvertEditDNAEditInvert": {"start_step": 2}})}
