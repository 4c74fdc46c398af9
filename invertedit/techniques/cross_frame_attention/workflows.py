"""Cross-Frame Attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from ...workflows.toy import (EDIT_CFG, MODEL_LOADER, SOURCE_PROMPT, STEPS, TARGET_PROMPT, TOY_WORLD, TOY_WORLDS,
                              pair_sampler, toy_note)

CLIP_ASSET = "toy_clip_two_objects.png"   # workshop/toyworld/clips.py's sample clip: 8 frames, lossless APNG
CLIP_FRAMES = 8


def clip_nodes(intro: str, front: list[dict], source: str, target: str, cross: float, self_: float,
               pixels: str = "image") -> list[dict]:
    """The clip edit after ``front`` (the note, the model's loader ``model``, the clip's Load Image ``image``, and
    what ``pixels`` names): the frames to edit, VAE Encode, DDIM Invert, Direct Inversion, Attention Inject (local
    blend off), Cross-Frame Attention, Apply Inversion, one KSampler (Advanced) run of the 2F rows, the edited
    frames saved (frames and an animated PNG), the reconstruction previewed."""
    return [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        *front,
        {"key": "frames", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": CLIP_FRAMES},
         "inputs": {"image": (pixels, "IMAGE")}, "title": "Frames to edit"},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": source}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Source prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("frames", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        {"key": "inject", "type": "InvertEditAttentionInject",
         "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                     "cross_replace": cross, "self_replace": self_, "local_blend": False},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")}},
        {"key": "cross", "type": "InvertEditCrossFrameAttention",
         "widgets": {"anchors": "first and previous", "anchor_frames": "", "min_channels": 0},
         "inputs": {"model": ("inject", "MODEL"), "latent": ("invert", "LATENT")}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("cross", "MODEL"), "inversion": ("direct", 0)}},
        dict(pair_sampler(EDIT_CFG, "inject"), inputs=dict(pair_sampler(EDIT_CFG, "inject")["inputs"],
                                                           model=("apply", "MODEL"))),
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "source_frames", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": CLIP_FRAMES},
         "inputs": {"image": ("decode", "IMAGE")}, "title": "The source frames (rows 0 to F-1)"},
        {"key": "edited_frames", "type": "ImageFromBatch",
         "widgets": {"batch_index": CLIP_FRAMES, "length": CLIP_FRAMES},
         "inputs": {"image": ("decode", "IMAGE")}, "title": "The edited frames (rows F to 2F-1)"},
        {"key": "save_frames", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/clip_edit"},
         "inputs": {"images": ("edited_frames", "IMAGE")}, "title": "Edit (the frames)"},
        {"key": "save_animation", "type": "SaveAnimatedPNG",
         "widgets": {"filename_prefix": "invertedit/clip_edit", "fps": 8.0, "compress_level": 4},
         "inputs": {"images": ("edited_frames", "IMAGE")}, "title": "Edit (animated PNG)"},
        {"key": "show_reconstruction", "type": "PreviewImage", "inputs": {"images": ("source_frames", "IMAGE")},
         "title": "Reconstruction"},
    ]


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
    return {"nodes": clip_nodes(intro, front, w["source"], w["target"], 0.8, 0.4), "result": "save_frames"}


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
    return {"nodes": clip_nodes(intro, front, PHOTO_SOURCE, PHOTO_TARGET, 0.4, 0.6, pixels="resize"),
            "result": "save_frames"}


QUICK_CLIP = {   # the tests: 4 frames, 10 steps
    "InvertEditDDIMInvert": {"steps": 10}, "KSamplerAdvanced": {"steps": 10}, "Frames to edit": {"length": 4},
    "The source frames (rows 0 to F-1)": {"length": 4},
    "The edited frames (rows F to 2F-1)": {"batch_index": 4, "length": 4}}


WORKFLOWS = {"Toy - Clip edit (cross-frame attention)": clip_edit, "SD1.5 - Clip edit (your checkpoint)": sd15_clip_edit}
QUICK_TOY = {"Toy - Clip edit (cross-frame attention)": QUICK_CLIP}
#: on the Toy World Model (tests, card): the toy clip and the toy world's prompts
CHECKPOINT = {"SD1.5 - Clip edit (your checkpoint)": (
    {"Load the clip (your animated PNG/WEBP)": {"image": CLIP_ASSET}, "Source prompt": {"text": SOURCE_PROMPT},
     "InvertEditAttentionInject": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT}},
    QUICK_CLIP)}
