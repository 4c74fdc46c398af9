"""TokenFlow's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.clips import CLIP_ASSET, CLIP_FRAMES
from ...workflows.toy import EDIT_CFG, MODEL_LOADER, STEPS, TOY_WORLD, TOY_WORLDS, ksampler_advanced, toy_note
from . import ROW

PAPER = ROW.settings_of("InvertEditTokenFlow")
BATCH_SIZE = 4   # two keyframes per step in the 8-frame clip (paper: 8, one per 8 frames of a 40-frame clip)


def tokenflow_clip_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    source, target = w["source"], w["target"]
    intro = (
        "# TokenFlow: a consistent clip edit\n\n"
        f"**Load Image** loads the animated PNG as a clip (an IMAGE batch of {CLIP_FRAMES} frames; for a video use "
        "**Load Video** and **Get Video Components**). **VAE Encode** and **DDIM Invert** invert every frame in one "
        "batched run. **TokenFlow** (Geyer et al., ICLR 2024) patches the model: at every step one random keyframe per "
        f"batch of frames (batch_size {BATCH_SIZE} here, so 2 keyframes; paper: {PAPER['batch_size']}) is edited "
        "jointly with the others (extended self-attention, with Plug-and-Play's injection of the source's "
        f"self-attention for {PAPER['self_attention_injection']:g} of the steps and of its decoder features for "
        f"{PAPER['feature_injection']:g}), and every frame's self-attention takes the keyframes' edited one through the "
        "nearest-neighbour field of the source frames' features, so the edit looks the same in every frame. One "
        f"stock **KSampler (Advanced)** run (add_noise disable, ddim, cfg {EDIT_CFG:g} here; paper 7.5 with its "
        "models) samples the inverted clip with the target prompt. The naive edit (the same sampler without "
        "TokenFlow: every frame redrawn from its inverted noise) is shown for comparison. On this toy model TokenFlow "
        "makes the edit the same in every frame but keeps the layout less than Plug-and-Play's pair editor does "
        "(docs/measurements.md, the toy clip benchmark).\n\n" + toy_note(world))
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET}, "title": "Load the clip (animated PNG)"},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": source}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Source prompt"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": target}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "tokenflow", "type": "InvertEditTokenFlow",
         "widgets": {**PAPER, "batch_size": BATCH_SIZE},
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0), "source": ("prompt", 0)}},
        ksampler_advanced("sample", "target", model="tokenflow", negative="empty", cfg=EDIT_CFG),
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save_frames", "type": "SaveImage", "widgets": {"filename_prefix": "invertedit/tokenflow"},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "TokenFlow edit (the frames)"},
        {"key": "save_animation", "type": "SaveAnimatedPNG",
         "widgets": {"filename_prefix": "invertedit/tokenflow", "fps": 8.0, "compress_level": 4},
         "inputs": {"images": ("decode", "IMAGE")}, "title": "TokenFlow edit (animated PNG)"},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0)}},
        ksampler_advanced("naive", "target", model="apply", negative="empty", cfg=EDIT_CFG),
        {"key": "decode_naive", "type": "VAEDecode", "inputs": {"samples": ("naive", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "show_naive", "type": "PreviewImage", "inputs": {"images": ("decode_naive", "IMAGE")},
         "title": "Naive edit (no TokenFlow)"},
    ]
    return {"nodes": nodes, "result": "save_frames"}


WORKFLOWS = {"Toy - TokenFlow clip edit": tokenflow_clip_edit}
QUICK_TOY = {"Toy - TokenFlow clip edit": {"InvertEditDDIMInvert": {"steps": 5}, "KSamplerAdvanced": {"steps": 5}}}
