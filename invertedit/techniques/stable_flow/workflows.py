"""Stable Flow's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import FLUX, PROMPTS_PLAIN, SCHEDULES, TOY_FLOW, flow_front, flow_model, setup_note, strip


def flux_stable_flow() -> dict:
    """Stable Flow with the authors' real-image settings (``snap-research/stable-flow``'s ``run_stable_flow.py``:
    50 steps, nudge 1.15, guidance 1 inverting, 1 and 3 editing, Flux.1 dev's vital blocks)."""
    intro = (
        "# Flux: Stable Flow, an edit that keeps the image's identity\n\n"
        + setup_note(FLUX, PROMPTS_PLAIN) +
        "\n**Stable Flow Invert** (Avrahami et al.) nudges your image's latent (times 1.15) and inverts it with Euler "
        "steps that take each step's velocity at its far end (50 steps, guidance 1). **Stable Flow** patches the "
        "model so that the source and the edit sample as one pair (the source row following the inversion, at "
        "guidance 1; the edit at guidance 3): in Flux.1 dev's vital blocks (double 0, 1, 17, 18; single 9, 34, 35, "
        "37, 6) the edit attends with the source's image keys and values, so it keeps who and what is in the image "
        "while the prompt changes it (poses, added objects, style). Sampled by the stock **SamplerCustomAdvanced** "
        "(euler) with Stable Flow's NOISE, the inversion's SIGMAS and the image's latent repeated twice (**Repeat "
        "Latent Batch**); **Latent From Batch** takes the edit (row 1). The strip: the image and the edit.")
    model = flow_model(FLUX)
    nodes = flow_front(FLUX, intro) + [
        {"key": "source_guidance", "type": "FluxGuidance", "widgets": {"guidance": 1.0},
         "inputs": {"conditioning": ("prompt", 0)}, "title": "FluxGuidance (source: 1)"},
        {"key": "target_guidance", "type": "FluxGuidance", "widgets": {"guidance": 3.0},
         "inputs": {"conditioning": ("target", 0)}, "title": "FluxGuidance (edit: 3)"},
        {"key": "invert", "type": "InvertEditStableFlowInvert",
         "widgets": {"steps": 50, "scheduler": SCHEDULES[FLUX.name], "guidance": 1.0, "nudge": 1.15},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "stable", "type": "InvertEditStableFlow",
         "widgets": {"double_blocks": "0, 1, 17, 18", "single_blocks": "9, 34, 35, 37, 6", "aligned_source": False},
         "inputs": {"model": model, "inversion": ("invert", 0), "source": ("source_guidance", 0),
                    "target": ("target_guidance", 0)}},
        {"key": "guider", "type": "BasicGuider", "inputs": {"model": ("stable", "MODEL"),
                                                            "conditioning": ("stable", "CONDITIONING")}},
        {"key": "pair_latent", "type": "RepeatLatentBatch", "widgets": {"amount": 2},
         "inputs": {"samples": ("encode", "LATENT")}, "title": "Repeat Latent Batch (the pair)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("stable", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("pair_latent", "LATENT")}},
        {"key": "pick", "type": "LatentFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"samples": ("sample", 0)}, "title": "Latent From Batch (the edit)"},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("pick", 0), "vae": ("model", "VAE")}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], "invertedit/flux_stable_flow", "Image | Stable Flow")
    return {"nodes": nodes}


WORKFLOWS = {"Flux - Stable Flow": flux_stable_flow}
# the toy's six blocks are all vital by the authors' analysis (workshop/benchmarks/vital_blocks.py): no list
# leaves the edit free on it (measurements.md, "Stable Flow's vital blocks on the toy model")
CHECKPOINT = {"Flux - Stable Flow": (dict(TOY_FLOW, InvertEditStableFlow={"double_blocks": "0, 1",
                                                                          "single_blocks": "0, 1"}), {})}
