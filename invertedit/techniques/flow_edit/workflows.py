"""FlowEdit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, QWEN, QWEN_CFG, QWEN_SHIFT, WAN, WAN_TINY, Family, PROMPTS_PLAIN, SCHEDULES,
                                     SD3, TOY_FLOW, flow_front, flow_model, setup_note, strip, vae_of, wan_clip_front,
                                     wan_clip_outputs, wan_setup_note)

# FlowEdit on Qwen-Image: the authors give settings for Flux and SD3 only (FLUX_exp.yaml, SD3_exp.yaml). Qwen-Image
# is, like SD3, an MMDiT sampled with true classifier-free guidance and an empty negative: SD3's steps and n_max,
# and the two guidances at SD3's ratio to its usual cfg (3.5 and 13.5 against 7: half and about twice) taken to
# Qwen-Image's usual cfg (QWEN_CFG, the diffusers pipeline's 4.0)
QWEN_FLOWEDIT = {"steps": 50, "n_max": 33, "source": QWEN_CFG / 2, "target": 7.5, "seed": 42}


def _flow_edit(family: Family, steps: int, n_max: int, source: float, target: float, seed: int) -> dict:
    """FlowEdit with the authors' settings for ``family`` (fallenshock/FlowEdit's FLUX_exp.yaml / SD3_exp.yaml;
    Qwen-Image: ``QWEN_FLOWEDIT``, from SD3's)."""
    flux, qwen = family is FLUX, family is QWEN
    guidance = ("Flux's distilled guidance of each prompt" if flux else
                "each prompt's classifier-free guidance scale, with the empty negative")
    settings = (f"The authors' settings for {family.name}" if not qwen else
                f"No authors' settings for {family.name} (theirs are Flux's and SD3's); SD3's, the other MMDiT "
                f"sampled with true classifier-free guidance, the guidances at SD3's ratio to its usual cfg (half and "
                f"about twice) of {family.name}'s {QWEN_CFG:g}")
    intro = (
        f"# {family.name}: FlowEdit, an edit without inversion\n\n"
        + setup_note(family, PROMPTS_PLAIN) +
        f"\n**FlowEdit** (Kulikov et al.) never inverts the image: from its latent, each of the last {n_max} of "
        f"{steps} steps moves the edit by the difference between the target prompt's and the source prompt's "
        "velocities, evaluated on a fresh noisy copy of the image (the RandomNoise seed draws them). "
        f"{settings}: {steps} steps, n_max {n_max}, guidance {source:g} (source) and "
        f"{target:g} (target): {guidance}. Raise n_max or the target guidance to change more; lower them to keep "
        "more of the image. Sampled by the stock **SamplerCustomAdvanced** with euler"
        + (" and **ModelSamplingFlux** at the image's size (the shift the authors' schedule uses)." if flux else
           f" and **ModelSamplingAuraFlow** at shift {QWEN_SHIFT:g}, as ComfyUI's Qwen-Image examples sample (the "
           "host's default without it: 1.15)." if qwen else ".")
        + " The strip shows the image and the edit.")
    model = flow_model(family)
    edit_inputs = {"model": model, "source": ("prompt", 0), "target": ("target", 0)}
    if not flux:
        edit_inputs["negative"] = ("empty", 0)
    nodes = flow_front(family, intro) + [
        {"key": "flowedit", "type": "InvertEditFlowEdit",
         "widgets": {"source_guidance": source, "target_guidance": target, "n_max": n_max, "n_min": 0, "n_avg": 1},
         "inputs": edit_inputs},
        {"key": "scheduler", "type": "BasicScheduler", "widgets": {"scheduler": SCHEDULES[family.name], "steps": steps,
                                                                     "denoise": 1.0},
         "inputs": {"model": model}, "title": f"BasicScheduler (the authors' {family.name} schedule)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": seed}, "title": "RandomNoise (FlowEdit's noises)"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("flowedit", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("scheduler", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/flowedit_{family.name.lower().replace('-', '_')}",
                   "Image | FlowEdit")
    return {"nodes": nodes}


def flux_flow_edit() -> dict:
    return _flow_edit(FLUX, steps=28, n_max=24, source=1.5, target=5.5, seed=10)


def sd3_flow_edit() -> dict:
    return _flow_edit(SD3, steps=50, n_max=33, source=3.5, target=13.5, seed=42)


def qwen_flow_edit() -> dict:
    return _flow_edit(QWEN, **QWEN_FLOWEDIT)


def flux_flow_edit_one_node() -> dict:
    """Flux FlowEdit with its sampling and decoding in one subgraph node (issue 79): on the canvas the model,
    the image, the prompts, the node and the result."""
    return dict(flux_flow_edit(), subgraph={
        "name": "FlowEdit",
        "description": (
            "# FlowEdit, inside\n\n"
            "**VAE Encode** of your image, **ModelSamplingFlux** at the image's size, **FlowEdit** (the source and "
            "target prompts' velocities on fresh noisy copies of the image), **BasicScheduler**, **KSamplerSelect** "
            "(euler), **RandomNoise** (FlowEdit's noises) and the stock **SamplerCustomAdvanced**, then **VAE "
            "Decode**; the edit goes out.\n\n"
            "The settings changed most are on the node outside (the two guidances, n_max, the steps, the seed); "
            "the others are here. Back to the workflow: the breadcrumb above."),
        "promote": [("flowedit", "source_guidance"), ("flowedit", "target_guidance"), ("flowedit", "n_max"),
                    ("scheduler", "steps"), ("noise", "noise_seed")],
        "labels": {"pixels": "image", "IMAGE": "edit"}})


WORKFLOWS = {"Flux - FlowEdit": flux_flow_edit, "SD3 - FlowEdit": sd3_flow_edit,
             "Flux - FlowEdit (one node)": flux_flow_edit_one_node, "Qwen-Image - FlowEdit": qwen_flow_edit}
CHECKPOINT = {"Flux - FlowEdit": (TOY_FLOW, {}),
              "SD3 - FlowEdit": ({}, {"BasicScheduler": {"steps": 6}, "InvertEditFlowEdit": {"n_max": 4}}),
              # on the Demo Model's tiny random Qwen-Image (make_workflows' CHECKPOINT_BUILTINS) with the toy world's
              # prompts, at the template's own settings (under a second on a CPU core)
              "Qwen-Image - FlowEdit": (TOY_FLOW, {})}
CHECKPOINT["Flux - FlowEdit (one node)"] = CHECKPOINT["Flux - FlowEdit"]


# ----------------------------------------------------------------------------- Wan 2.1: a clip (issue 82)
#: FiVE-Bench's Wan-Edit settings (models/wan-edit: edit.py's defaults and scripts): 50 steps at shift 5, the first
#: 16 skipped (n_max 34), source and target classifier-free guidance 5 and 10 with Wan's negative prompt
WAN_FLOWEDIT = {"steps": 50, "shift": 5.0, "n_max": 34, "source": 5.0, "target": 10.0, "seed": 42}


def wan_clip_flow_edit() -> dict:
    """FlowEdit on a Wan 2.1 clip (FiVE's Wan-Edit settings): the clip's frames through the Wan VAE into one latent
    [1, 16, frames, h, w], FlowEdit's GUIDER on it, the edit decoded to frames, saved as frames and as an animated
    WEBP, beside the source frame for frame."""
    s = WAN_FLOWEDIT
    intro = (
        "# Wan 2.1: a clip edited with FlowEdit (FiVE's Wan-Edit)\n\n"
        + wan_setup_note(PROMPTS_PLAIN) +
        "\n**FlowEdit** (Kulikov et al.) edits the whole clip at once, never inverting it: from the clip's latent "
        f"(one latent [1, 16, frames, h, w]), each of the last {s['n_max']} of {s['steps']} steps moves the edit by "
        "the difference between the target prompt's and the source prompt's velocities on a fresh noisy copy of the "
        "clip, each with its classifier-free guidance and Wan's negative prompt, in one model call a step. FiVE-Bench's "
        f"Wan-Edit settings: {s['steps']} steps at shift {s['shift']:g} (**ModelSamplingSD3**), the first "
        f"{s['steps'] - s['n_max']} skipped (n_max {s['n_max']}), guidance {s['source']:g} (source) and "
        f"{s['target']:g} (target). FiVE's own loop noises the source a step early and integrates with UniPC; this is "
        "FlowEdit's Euler loop. The edit is saved as frames and as an animated WebP, the source beside it.\n\n"
        + WAN_TINY)
    model = ("shift", "MODEL")
    nodes = wan_clip_front(intro, s["shift"]) + [
        {"key": "flowedit", "type": "InvertEditFlowEdit",
         "widgets": {"source_guidance": s["source"], "target_guidance": s["target"], "n_max": s["n_max"], "n_min": 0,
                     "n_avg": 1},
         "inputs": {"model": model, "source": ("prompt", 0), "target": ("target", 0), "negative": ("empty", 0)}},
        {"key": "scheduler", "type": "BasicScheduler", "widgets": {"scheduler": "simple", "steps": s["steps"],
                                                                     "denoise": 1.0},
         "inputs": {"model": model}, "title": "BasicScheduler (FiVE's 50 steps)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": s["seed"]},
         "title": "RandomNoise (FlowEdit's noises)"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("flowedit", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("scheduler", "SIGMAS"), "latent_image": ("encode", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", 0), "vae": vae_of(WAN)}},
    ] + wan_clip_outputs("decode", "invertedit/flowedit_wan", "FlowEdit")
    return {"nodes": nodes, "result": "save"}


WORKFLOWS["Wan 2.1 - Clip edit (FlowEdit)"] = wan_clip_flow_edit
# on the Demo Model's tiny random Wan 2.1 (CHECKPOINT_BUILTIN) with the toy world's prompts; the still sample as a clip
# of 5 frames (2 latent frames), 6 steps
CHECKPOINT["Wan 2.1 - Clip edit (FlowEdit)"] = (
    {**TOY_FLOW, "RepeatImageBatch": {"amount": 5}},
    {"BasicScheduler": {"steps": 6}, "InvertEditFlowEdit": {"n_max": 4}})
CHECKPOINT_BUILTIN = {"Wan 2.1 - Clip edit (FlowEdit)": "demo-wan21"}
