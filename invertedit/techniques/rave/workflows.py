"""RAVE's example workflow (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes it."""
from __future__ import annotations

from ...workflows.clips import CLIP_ASSET, CLIP_FRAMES
from ...workflows.toy import EDIT_CFG, MODEL_LOADER, STEPS, TOY_WORLD, TOY_WORLDS, ksampler_advanced, toy_note
from . import ROW

PAPER = ROW.settings_of("InvertEditRAVE")
GRID = 2   # 2 x 2 grids: the 8-frame clip makes 2 grids (paper: 3 x 3 of a longer clip; 9 does not divide 8)
#: the inversion stops this many steps short of noise, and the edit starts there: without the authors' depth ControlNet
#: (the host's hints are per frame), a partial inversion keeps the layout (a full one redraws it as the naive edit does)
START = 20


def rave_clip_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    intro = (
        "# RAVE: a clip edited as shuffled grids\n\n"
        f"**Load Image** loads the animated PNG as a clip (an IMAGE batch of {CLIP_FRAMES} frames; for a video use "
        "**Load Video** and **Get Video Components**). **DDIM Invert** inverts every frame in one batched run. **RAVE** "
        f"(Kara et al., CVPR 2024) patches the model: at every step the frames are tiled into grids of {GRID} x {GRID} "
        f"(paper: {PAPER['grid_size']} x {PAPER['grid_size']}; the square must divide the frame count) in an order "
        "shuffled anew each step, and the model denoises each grid as one picture, so the frames of a grid share "
        "their attention. One stock **KSampler (Advanced)** run samples the inverted clip with the target prompt. The "
        f"inversion stops {START} of {STEPS} steps short of noise and the sampler starts there (start_at_step {START}): "
        "the authors keep the layout with a depth ControlNet, which this wrapper cannot take (the host's hints are "
        "per frame); a partial inversion keeps it instead. "
        "On this toy model a grid is a picture twice the size it was trained on, so faint seams can show: "
        "RAVE is made for real checkpoints.\n\n" + toy_note(world))
    sampler = ksampler_advanced("sample", "target", model="apply", negative="empty", cfg=EDIT_CFG)
    sampler["widgets"]["start_at_step"] = START
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET}, "title": "Load the clip (animated PNG)"},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": w["source"]}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Source prompt"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": w["target"]}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": START, "cfg": 1.0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "rave", "type": "InvertEditRAVE", "widgets": {**PAPER, "grid_size": GRID},
         "inputs": {"model": ("model", "MODEL")}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("rave", "MODEL"), "inversion": ("invert", 0)}},
        sampler,
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save_frames", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/rave"},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "RAVE edit (the frames)"},
        {"key": "save_animation", "type": "SaveAnimatedPNG",
         "widgets": {"filename_prefix": "invertedit/rave", "fps": 8.0, "compress_level": 4},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "RAVE edit (animated PNG)"},
    ]
    return {"nodes": nodes, "result": "save_frames"}


WORKFLOWS = {"Toy - RAVE clip edit": rave_clip_edit}
QUICK_TOY = {"Toy - RAVE clip edit": {"InvertEditDDIMInvert": {"steps": 5, "start_at_step": 2},
                                      "KSamplerAdvanced": {"steps": 5, "start_at_step": 2}}}
