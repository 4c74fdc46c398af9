"""Cross-View Attention's flow template (issue 83, part flow views): a view set edited by FlowEdit on the toy flow
world (a guidance-distilled Flux-architecture DiT at 256 px) with its joint attention aligned across views
(``hostkit/dit_views.py``), beside FlowEdit view by view. Merged into this folder's ``workflows.py``'s ``WORKFLOWS``.
Plain data."""
from __future__ import annotations

from ...demo.worlds import WORLD_FLOW, WORLDS
from ...workflows.toy import MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT
from ...workflows.views import CROSS_VIEW, VIEW_ASSET, VIEW_COUNT

NAME = "Toy - View set edit (FlowEdit + cross-view attention)"
SIZE = WORLDS[WORLD_FLOW].size          # the flow world's pictures: 256 px
#: FlowEdit with the authors' Flux settings (fallenshock/FlowEdit's FLUX_exp.yaml), as the Flux FlowEdit template
FLOWEDIT = {"steps": 28, "n_max": 24, "source": 1.5, "target": 5.5, "seed": 10}


def flow_view_set_edit() -> dict:
    s = FLOWEDIT
    intro = (
        "# View set edit with FlowEdit and cross-view attention (flow DiT)\n\n"
        f"**Load Image** loads the animated PNG as a view set (an IMAGE batch of {VIEW_COUNT} views of one scene, each "
        "from a camera shifted sideways: the near circle moves more than the far square); **Upscale Image** brings "
        f"them to the toy flow world's {SIZE} px, and **VAE Encode** makes one LATENT of {VIEW_COUNT} rows: one view "
        "a row.\n\n"
        "**Cross-View Attention** on a flow transformer (Flux.1, SD3, Qwen-Image) aligns every block's joint "
        "attention: each view's queries attend to its own text and image tokens, and to each reference view's whole "
        "sequence (its text and image tokens), one softmax per reference; the output is 0.6 its own attention and 0.4 "
        "the mean over the 4 references (GaussCtrl's latent alignment, carried from a UNet's self-attention to joint "
        "attention). **FlowEdit** (Kulikov et al.) edits the views without inverting them, its source and target "
        "prompts evaluated on all views in one model call a step; each prompt's views read only that prompt's "
        f"reference views. The authors' Flux settings: {s['steps']} steps, n_max {s['n_max']}, guidance "
        f"{s['source']:g} (source) and {s['target']:g} (target), euler, **ModelSamplingFlux** at the views' size. "
        "Apply Cross-View Attention last when a DiT attention editor is on the model too (it aligns what that editor "
        "computes).\n\n"
        "The same FlowEdit without the alignment (view by view) is previewed beside it. **Cost**: (R + 1) x each "
        "joint attention's multiply-adds with R references; about 10 more dispatched operations a block a step "
        "(Flux.1's 57 blocks: 1.17x a stock step's operations, whatever R). **To run it on your model**: "
        "replace the Toy World Model with Flux.1 (Load Diffusion Model, DualCLIPLoader, Load VAE) and the views with "
        "yours (the same size; **Batch Images** joins single pictures), and write your prompts.\n\n"
        "The **Toy World Model**'s flow world is the pack's built-in demo: a tiny guidance-distilled Flux-architecture "
        "DiT trained on 256 px scenes of two coloured shapes on a flat background.")
    model = ("shift", "MODEL")
    clip, vae = ("model", "CLIP"), ("model", "VAE")
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": WORLD_FLOW}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": VIEW_ASSET}, "title": "Load the views (animated PNG)"},
        {"key": "resize", "type": "ImageScale",
         "widgets": {"upscale_method": "area", "width": SIZE, "height": SIZE, "crop": "disabled"},
         "inputs": {"image": ("image", "IMAGE")}, "title": f"Upscale Image (the flow world's {SIZE} px)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("resize", "IMAGE"), "vae": vae}},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": SOURCE_PROMPT}, "inputs": {"clip": clip},
         "title": "Source prompt"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT}, "inputs": {"clip": clip},
         "title": "Target prompt"},
        {"key": "image_size", "type": "GetImageSize", "inputs": {"image": ("resize", "IMAGE")}},
        {"key": "shift", "type": "ModelSamplingFlux", "widgets": {"max_shift": 1.15, "base_shift": 0.5},
         "inputs": {"model": ("model", "MODEL"), "width": ("image_size", "width"), "height": ("image_size", "height")},
         "title": "ModelSamplingFlux (the views' size)"},
        dict(CROSS_VIEW, key="cross", inputs={"model": model, "latent": ("encode", "LATENT")}),
        {"key": "scheduler", "type": "BasicScheduler", "widgets": {"scheduler": "simple", "steps": s["steps"],
                                                                     "denoise": 1.0},
         "inputs": {"model": model}, "title": "BasicScheduler (the authors' Flux schedule)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": s["seed"]},
         "title": "RandomNoise (FlowEdit's noises)"},
    ]
    for key, patched, title in (("edit", ("cross", "MODEL"), "FlowEdit (views aligned)"),
                                ("plain", model, "FlowEdit (view by view)")):
        nodes += [
            {"key": f"{key}_flowedit", "type": "InvertEditFlowEdit", "title": title,
             "widgets": {"source_guidance": s["source"], "target_guidance": s["target"], "n_max": s["n_max"],
                         "n_min": 0, "n_avg": 1},
             "inputs": {"model": patched, "source": ("prompt", 0), "target": ("target", 0)}},
            {"key": f"{key}_sample", "type": "SamplerCustomAdvanced",
             "inputs": {"noise": ("noise", "NOISE"), "guider": (f"{key}_flowedit", "GUIDER"),
                        "sampler": ("sampler", "SAMPLER"), "sigmas": ("scheduler", "SIGMAS"),
                        "latent_image": ("encode", "LATENT")}},
            {"key": f"{key}_decode", "type": "VAEDecode", "inputs": {"samples": (f"{key}_sample", 0), "vae": vae}},
        ]
    nodes += [
        {"key": "show_plain", "type": "PreviewImage", "inputs": {"images": ("plain_decode", "IMAGE")},
         "title": "View by view (FlowEdit alone)"},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/flow_view_edit"},
         "inputs": {"images": ("edit_decode", "IMAGE")}, "title": "Edited views (FlowEdit + cross-view attention)"},
    ]
    return {"nodes": nodes, "result": "save"}


WORKFLOWS = {NAME: flow_view_set_edit}
#: the tests' quick run (and the half-precision lane's): 5 steps, the edit acting in the last 4 (with n_max at the steps
#: the edit starts at pure noise: a new picture, which half precision's rounding moves far, 12 dB from float32's)
QUICK_TOY = {NAME: {"BasicScheduler": {"steps": 5}, "InvertEditFlowEdit": {"n_max": 4}}}
