"""FlowAlign's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, Family, PROMPTS_PLAIN, SCHEDULES, SD3, TOY_FLOW, flow_front, flow_model,
                                     setup_note, strip, vae_of)

#: The authors' settings (FlowAlign/FlowAlign's run_edit.py: NFE 33, cfg_scale 13.5, seed 123; sd3_edit.py's
#: regulariser 0.01), on SD3 medium's schedule (diffusers' scheduler at shift 3: the host's "normal")
SD3_FLOWALIGN = {"steps": 33, "guidance": 13.5, "regularization": 0.01, "seed": 123}
#: Flux (ours: the authors publish SD3 only). The same math: the target guided over the source prompt by true
#: classifier-free guidance (3 rows a step), both prompts at Flux dev's distilled guidance 3.5 (FluxGuidance; the
#: model's default), Flux's 28 steps. Chosen on the toy flow world's first 16 edit cases (docs: the FlowAlign rows):
#: this kept the most (background 25.4 dB to the exact target, structure 38%) at the same edit success (62%) as the
#: target alone with FlowEdit's distilled guidances 1.5 / 5.5 (20.0 dB, 12%); guidance 13.5 replaced the picture
FLUX_FLOWALIGN = {"steps": 28, "guidance": 2.0, "regularization": 0.01, "source_flux": 3.5, "target_flux": 3.5,
                  "seed": 10}


def _flow_align(family: Family, s: dict) -> dict:
    flux = family is FLUX
    if flux:
        settings = (f"Ours on Flux (the authors publish SD3 only): {s['steps']} steps, each prompt with Flux's "
                    f"distilled guidance (**FluxGuidance** {s['source_flux']:g}, the model's default), the target guided "
                    f"over the source prompt at {s['guidance']:g} (true classifier-free guidance, as the authors' SD3 "
                    f"code; 13.5 replaces the picture on Flux), regularization {s['regularization']:g}.")
    else:
        settings = (f"The authors' settings: {s['steps']} steps (every one acting), guidance {s['guidance']:g} (the "
                    f"target over the source prompt; no negative prompt), regularization {s['regularization']:g}, "
                    f"seed {s['seed']}.")
    intro = (
        f"# {family.name}: FlowAlign, an edit without inversion\n\n"
        + setup_note(family, PROMPTS_PLAIN) +
        "\n**FlowAlign** (Kim et al.) never inverts the image: from its latent, each step moves the edit by the "
        "target prompt's minus the source prompt's velocity on a fresh noisy copy of the image (the RandomNoise seed "
        "draws them), as FlowEdit, plus a flow-matching regulariser that pulls the edit's clean estimate towards the "
        f"image's. {settings} Raise the guidance to change more; raise the regularization to keep more of the "
        "image. Sampled by the stock **SamplerCustomAdvanced** with euler"
        + (" and **ModelSamplingFlux** at the image's size." if flux else ".")
        + " The strip shows the image and the edit.")
    model = flow_model(family)
    nodes = flow_front(family, intro)
    source, target = ("prompt", 0), ("target", 0)
    if flux:
        nodes += [{"key": "source_flux", "type": "FluxGuidance", "widgets": {"guidance": s["source_flux"]},
                   "inputs": {"conditioning": source}, "title": "FluxGuidance (source)"},
                  {"key": "target_flux", "type": "FluxGuidance", "widgets": {"guidance": s["target_flux"]},
                   "inputs": {"conditioning": target}, "title": "FluxGuidance (target)"}]
        source, target = ("source_flux", 0), ("target_flux", 0)
    else:
        nodes = [n for n in nodes if n["key"] != "empty"]   # FlowAlign takes no negative prompt
    nodes += [
        {"key": "flowalign", "type": "InvertEditFlowAlign",
         "widgets": {"guidance": s["guidance"], "regularization": s["regularization"]},
         "inputs": {"model": model, "source": source, "target": target}},
        {"key": "scheduler", "type": "BasicScheduler",
         "widgets": {"scheduler": SCHEDULES[family.name], "steps": s["steps"], "denoise": 1.0},
         "inputs": {"model": model},
         "title": f"BasicScheduler ({'the authors' if not flux else 'Flux'}' {family.name} schedule)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": s["seed"]},
         "title": "RandomNoise (FlowAlign's noises)"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("flowalign", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("scheduler", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/flowalign_{family.name.lower()}",
                   "Image | FlowAlign")
    return {"nodes": nodes}


def sd3_flow_align() -> dict:
    return _flow_align(SD3, SD3_FLOWALIGN)


def flux_flow_align() -> dict:
    return _flow_align(FLUX, FLUX_FLOWALIGN)


WORKFLOWS = {"SD3 - FlowAlign": sd3_flow_align, "Flux - FlowAlign": flux_flow_align}
CHECKPOINT = {"Flux - FlowAlign": (TOY_FLOW, {}),
              "SD3 - FlowAlign": ({}, {"BasicScheduler": {"steps": 6}})}
