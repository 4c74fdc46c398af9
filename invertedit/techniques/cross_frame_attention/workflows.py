"""Cross-Frame Attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import EDIT_CFG, MODEL_LOADER, STEPS, TOY_WORLD, TOY_WORLDS, pair_sampler, toy_note

CLIP_ASSET = "toy_clip_two_objects.png"   # workshop/toyworld/clips.py's sample clip: 8 frames, lossless APNG
CLIP_FRAMES = 8


def clip_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    source, target = w["source"], w["target"]
    intro = (
        "# Clip edit: one prompt edit on every frame, kept consistent\n\n"
        f"**Load Image** loads the animated PNG as a clip (an IMAGE batch of {CLIP_FRAMES} frames; for a video use "
        "**Load Video** and **Get Video Components**). **VAE Encode** and **DDIM Invert** invert every frame in one "
        "batched run, **Direct Inversion** keeps the source frames on their trajectories, and **Attention Inject** "
        "(Prompt-to-Prompt: replace, cross-attention 0.8 and self-attention 0.4 of the steps; local blend off, it masks "
        "one image) makes the pair of clips: the source frames, then the target frames, with their prompts. "
        "**Cross-Frame Attention** (Tune-A-Video / FateZero's sparse-causal attention: every frame's self-attention "
        "reads the keys and values of frame 0 and of the frame before it) draws the frames alike. One stock "
        f"**KSampler (Advanced)** run samples all {2 * CLIP_FRAMES} rows. The edited frames are rows {CLIP_FRAMES} to "
        f"{2 * CLIP_FRAMES - 1} of the batch (**Image From Batch**: set batch_index and length to your clip's frame "
        "count, and **Frames to edit** for a part of a longer clip); they are saved as frames and as an animated PNG.\n\n" + toy_note(world))
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET}, "title": "Load the clip (animated PNG)"},
        {"key": "frames", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": CLIP_FRAMES},
         "inputs": {"image": ("image", "IMAGE")}, "title": "Frames to edit"},
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
                     "cross_replace": 0.8, "self_replace": 0.4, "local_blend": False},
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
    return {"nodes": nodes, "result": "save_frames"}


WORKFLOWS = {"Toy - Clip edit (cross-frame attention)": clip_edit}
QUICK_TOY = {"Toy - Clip edit (cross-frame attention)": {   # the tests: 4 frames, 10 steps
    "InvertEditDDIMInvert": {"steps": 10}, "KSamplerAdvanced": {"steps": 10}, "Frames to edit": {"length": 4},
    "The source frames (rows 0 to F-1)": {"length": 4},
    "The edited frames (rows F to 2F-1)": {"batch_index": 4, "length": 4}}}
