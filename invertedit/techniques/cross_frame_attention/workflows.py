"""Cross-Frame Attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from ...workflows.clips import CLIP_ASSET, CLIP_FRAMES, QUICK_CLIP, clip_nodes
from ...workflows.toy import MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT, TOY_WORLD, TOY_WORLDS, toy_note



def inject(source: str, target: str, cross: float, self_: float) -> dict:
    """Attention Inject (Prompt-to-Prompt replace) of a clip: the local blend off (it masks one image)."""
    return {"type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                        "cross_replace": cross, "self_replace": self_, "local_blend": False}}


HOW = ("**VAE Encode** and **DDIM Invert** invert every frame in one batched run, **Direct Inversion** keeps the "
       "source frames on their trajectories, and **Attention Inject** (Prompt-to-Prompt replace; local blend off: it "
       "masks one image) makes the pair of clips: the source frames, then the target frames, with their prompts. "
       "**Cross-Frame Attention** (Tune-A-Video / FateZero's sparse-causal attention: every frame's self-attention "
       "reads the keys and values of frame 0 and of the frame before it) draws the frames alike. One stock "
       "**KSampler (Advanced)** run samples all 2F rows. The edited frames are rows F to 2F-1 of the batch (**Image "
       "From Batch**: set batch_index and length to your clip's frame count F, and **Frames to edit** for a part of a "
       "longer clip); they are saved as frames and as an animated PNG.")


def clip_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    intro = (
        "# Clip edit: one prompt edit on every frame, kept consistent\n\n"
        f"**Load Image** loads the animated PNG as a clip (an IMAGE batch of {CLIP_FRAMES} frames; for a video use "
        "**Load Video** and **Get Video Components**). Attention Inject: cross-attention 0.8 and self-attention 0.4 "
        "of the steps. " + HOW + "\n\n" + toy_note(world))
    front = [dict(MODEL_LOADER, widgets={"world": world}),
             {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET},
              "title": "Load the clip (animated PNG)"}]
    return {"nodes": clip_nodes(intro, front, w["source"], inject(w["source"], w["target"], 0.8, 0.4)),
            "result": "save_frames"}


def sd15_clip_edit() -> dict:
    intro = (
        "# SD1.5 clip edit (your checkpoint): one prompt edit on every frame, kept consistent\n\n"
        f"**To run it on your model** (SD1.5: {SD15.detail}):\n\n"
        "1. **Load Checkpoint**: choose your SD1.5 checkpoint.\n"
        "2. **Load Image**: your clip as an animated PNG or WEBP (it opens with the pack's 8-frame toy clip); for a "
        "video file replace it by **Load Video** and **Get Video Components** (its IMAGE output goes where Load "
        "Image's went).\n"
        f"3. **Scale Image to Total Pixels** brings every frame to about {SD15.size}x{SD15.size} pixels in all, "
        "keeping its shape.\n"
        "4. **Source prompt** (and Attention Inject's source_prompt): your clip as it is; **target_prompt**: the same "
        "words with the one you change (Prompt-to-Prompt replace swaps words one for one).\n\n"
        "Attention Inject with PIE-Bench's Prompt-to-Prompt settings (cross-attention 0.4 of the steps, "
        f"self-attention 0.6). " + HOW + " Memory: the sampler runs 2F rows at once (16 rows for 8 frames: about "
        "what 16 images at 512 px take); edit a part of a long clip with **Frames to edit**.")
    front = [*model_loaders(SD15),
             {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET},
              "title": "Load the clip (your animated PNG/WEBP)"},
             {"key": "resize", "type": "ImageScaleToTotalPixels",
              "widgets": {"upscale_method": "lanczos", "megapixels": megapixels(SD15)},
              "inputs": {"image": ("image", "IMAGE")}, "title": "Scale Image (SD1.5: 0.25 MP, its shape kept)"}]
    return {"nodes": clip_nodes(intro, front, PHOTO_SOURCE, inject(PHOTO_SOURCE, PHOTO_TARGET, 0.4, 0.6),
                                pixels="resize"), "result": "save_frames"}


WORKFLOWS = {"Toy - Clip edit (cross-frame attention)": clip_edit, "SD1.5 - Clip edit (your checkpoint)": sd15_clip_edit}
QUICK_TOY = {"Toy - Clip edit (cross-frame attention)": QUICK_CLIP}
#: on the Toy World Model (tests, card): the toy clip and the toy world's prompts
CHECKPOINT = {"SD1.5 - Clip edit (your checkpoint)": (
    {"Load the clip (your animated PNG/WEBP)": {"image": CLIP_ASSET}, "Source prompt": {"value": SOURCE_PROMPT},
     "InvertEditAttentionInject": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT}},
    QUICK_CLIP)}
