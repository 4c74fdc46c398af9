"""Cross-View Attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from ...workflows.toy import MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT, TOY_WORLD, TOY_WORLDS, toy_note
from ...workflows.views import HOW, QUICK_VIEWS, VIEW_ASSET, VIEW_COUNT, view_edit_nodes


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


WORKFLOWS = {"Toy - View set edit (cross-view attention)": view_set_edit,
             "SD1.5 - View set edit (your checkpoint)": sd15_view_set_edit}
QUICK_TOY = {"Toy - View set edit (cross-view attention)": QUICK_VIEWS}
#: on the Toy World Model (tests, card): the toy views and the toy world's prompts
CHECKPOINT = {"SD1.5 - View set edit (your checkpoint)": (
    {"Load the views (your animated PNG/WEBP)": {"image": VIEW_ASSET}, "Source prompt": {"value": SOURCE_PROMPT},
     "InvertEditAttentionInject": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT}},
    QUICK_VIEWS)}
from .workflows_flow import QUICK_TOY as _FLOW_QUICK, WORKFLOWS as _FLOW; WORKFLOWS.update(_FLOW); QUICK_TOY.update(_FLOW_QUICK)  # noqa: E402, E702  (the flow template, issue 83 part flow views)
