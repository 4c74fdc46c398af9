"""Cross-View Attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...demo.worlds import WORLD_FLOW, WORLDS
from ...workflows.checkpoint import PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from ...workflows.toy import MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT, TOY_WORLD, TOY_WORLDS, toy_note
from ...workflows.views import CROSS_VIEW, HOW, QUICK_VIEWS, VIEW_ASSET, VIEW_COUNT, view_edit_nodes


def inject(source: str, target: str, cross: float, self_: float) -> dict:
    """Attention Inject (Prompt-to-Prompt replace) of a view set: the local blend off (it masks one image)."""
    return {"type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                        "cross_replace": cross, "self_replace": self_, "local_blend": False}}


def view_set_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    intro = (
        "# View set edit: one prompt edit on every view of an asset, kept consistent\n\n"
        f"**Load Image** loads the animated PNG as a view set (an IMAGE batch of {VIEW_COUNT} views of one scene, each "
        "from a camera shifted sideways: the near square moves more than the far circle). For your own views, batch "
        "single pictures with **Batch Images**, or use SV3D's orbit. Attention Inject: cross-attention 0.8 and "
        "self-attention 0.4 of the steps. " + HOW + "\n\n" + toy_note(world))
    front = [dict(MODEL_LOADER, widgets={"world": world}),
             {"key": "image", "type": "LoadImage", "widgets": {"image": VIEW_ASSET},
              "title": "Load the views (animated PNG)"}]
    return {"nodes": view_edit_nodes(intro, front, w["source"], inject(w["source"], w["target"], 0.8, 0.4)),
            "result": "save_frames"}


def sd15_view_set_edit() -> dict:
    intro = (
        "# SD1.5 view set edit (your checkpoint): one prompt edit on every view of an asset, kept consistent\n\n"
        f"**To run it on your model** (SD1.5: {SD15.detail}):\n\n"
        "1. **Load Checkpoint**: choose your SD1.5 checkpoint.\n"
        "2. **Load Image**: your views as an animated PNG or WEBP (it opens with the pack's 4-view toy set); for "
        "separate pictures, load each and join them with **Batch Images** (the same size), or connect SV3D's orbit.\n"
        f"3. **Scale Image to Total Pixels** brings every view to about {SD15.size}x{SD15.size} pixels in all, keeping "
        "its shape.\n"
        "4. **Source prompt** (and Attention Inject's source_prompt): your asset as it is; **target_prompt**: the same "
        "words with the one you change (Prompt-to-Prompt replace swaps words one for one).\n\n"
        "Attention Inject with PIE-Bench's Prompt-to-Prompt settings (cross-attention 0.4 of the steps, "
        "self-attention 0.6). " + HOW + " Memory: the sampler runs 2V rows at once (8 rows for 4 views, about what 8 "
        "images at 512 px take), and each self-attention call holds the 4 references' queries and outputs.")
    front = [*model_loaders(SD15),
             {"key": "image", "type": "LoadImage", "widgets": {"image": VIEW_ASSET},
              "title": "Load the views (your animated PNG/WEBP)"},
             {"key": "resize", "type": "ImageScaleToTotalPixels",
              "widgets": {"upscale_method": "lanczos", "megapixels": megapixels(SD15)},
              "inputs": {"image": ("image", "IMAGE")}, "title": "Scale Image (SD1.5: 0.25 MP, its shape kept)"}]
    return {"nodes": view_edit_nodes(intro, front, PHOTO_SOURCE, inject(PHOTO_SOURCE, PHOTO_TARGET, 0.4, 0.6),
                                     pixels="resize"), "result": "save_frames"}


# ----------------------------------------------------------------------------- on a flow transformer

FLOW_NAME = "Toy - View set edit (FlowEdit + cross-view attention)"
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



#: the flow template's quick run in the tests (and the half-precision lane's): 5 steps, the edit acting in the last 4 (with n_max at the steps
#: the edit starts at pure noise: a new picture, which half precision's rounding moves far, 12 dB from float32's)
FLOW_QUICK = {"BasicScheduler": {"steps": 5}, "InvertEditFlowEdit": {"n_max": 4}}


WORKFLOWS = {"Toy - View set edit (cross-view attention)": view_set_edit,
             "SD1.5 - View set edit (your checkpoint)": sd15_view_set_edit, FLOW_NAME: flow_view_set_edit}
QUICK_TOY = {"Toy - View set edit (cross-view attention)": QUICK_VIEWS, FLOW_NAME: FLOW_QUICK}
#: on the Toy World Model (tests, card): the toy views and the toy world's prompts
CHECKPOINT = {"SD1.5 - View set edit (your checkpoint)": (
    {"Load the views (your animated PNG/WEBP)": {"image": VIEW_ASSET}, "Source prompt": {"value": SOURCE_PROMPT},
     "InvertEditAttentionInject": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT}},
    QUICK_VIEWS)}
