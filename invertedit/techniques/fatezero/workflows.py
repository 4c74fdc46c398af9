"""FateZero's example workflow (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes it."""
from __future__ import annotations

from ...workflows.clips import CLIP_ASSET, CLIP_FRAMES, QUICK_CLIP, clip_nodes
from ...workflows.toy import MODEL_LOADER, TOY_WORLD, TOY_WORLDS, toy_note
from . import ROW

PAPER = ROW.settings_of("InvertEditFateZero")


def fatezero_clip_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    source, target, (noun, _) = w["source"], w["target"], w["nouns"]
    intro = (
        "# Clip edit with FateZero's attention fusion\n\n"
        f"**Load Image** loads the animated PNG as a clip (an IMAGE batch of {CLIP_FRAMES} frames; for a video use "
        "**Load Video** and **Get Video Components**). **VAE Encode** and **DDIM Invert** invert every frame in one "
        "batched run; **Direct Inversion** keeps the source frames on the inversion, so their attention maps at every "
        "step are the inversion's. **FateZero Fusion** (Qi et al., ICCV 2023) edits the target frames with them: "
        f"cross-attention from the source's maps for {PAPER['cross_replace']:g} of the steps (refine), self-attention "
        f"the source's for {PAPER['self_replace']:g} of the steps outside the mask of '{noun}' (the source's "
        f"cross-attention of the word, threshold {PAPER['blend_threshold']:g}), and sparse-causal attention (frames 0 "
        "and f-1) across the frames. One stock **KSampler (Advanced)** run samples the 2F rows; the edited frames are "
        "rows F to 2F-1 (**Image From Batch**), saved as frames and as an animated PNG.\n\n" + toy_note(world))
    front = [dict(MODEL_LOADER, widgets={"world": world}),
             {"key": "image", "type": "LoadImage", "widgets": {"image": CLIP_ASSET},
              "title": "Load the clip (animated PNG)"}]
    editor = {"type": "InvertEditFateZero",
              "widgets": {"source_prompt": source, "target_prompt": target, "mode": "refine",
                          "cross_replace": PAPER["cross_replace"], "self_replace": PAPER["self_replace"],
                          "blend_words": noun, "blend_threshold": PAPER["blend_threshold"]}}
    return {"nodes": clip_nodes(intro, front, source, editor, cross_frame=False), "result": "save_frames"}


WORKFLOWS = {"Toy - Clip edit (FateZero)": fatezero_clip_edit}
QUICK_TOY = {"Toy - Clip edit (FateZero)": QUICK_CLIP}
