"""The parts of the clip-edit workflows (issue 82) and the view-set edits (issue 83): a clip (an IMAGE batch of F frames) inverted in one batched run,
edited as a pair of clips (2F rows: source frames, then target frames) by a pair editor, sampled in one KSampler
(Advanced) run, the edited frames saved as frames and as an animated PNG. Plain data."""
from __future__ import annotations

from typing import NamedTuple

from .toy import EDIT_CFG, STEPS, pair_sampler

CLIP_ASSET = "toy_clip_two_objects.png"   # workshop/toyworld/clips.py's sample clip: 8 frames, lossless APNG
CLIP_FRAMES = 8

#: the tests' quick run of a clip workflow: 4 frames, 10 steps
QUICK_CLIP = {
    "InvertEditDDIMInvert": {"steps": 10}, "KSamplerAdvanced": {"steps": 10}, "Frames to edit": {"length": 4},
    "The source frames (rows 0 to F-1)": {"length": 4},
    "The edited frames (rows F to 2F-1)": {"batch_index": 4, "length": 4}}


class Wording(NamedTuple):
    """How a set of images is named in a workflow: a clip's frames or an asset's views."""
    noun: str            # "frames", "views"
    letter: str          # "F", "V"
    count: int           # the bundled sample's count
    prefix: str          # the Save Image prefix


CLIP = Wording("frames", "F", CLIP_FRAMES, "invertedit/clip_edit")


def clip_nodes(intro: str, front: list[dict], source: str, editor: dict, cross_frame: bool = True,
               pixels: str = "image", aligner: dict | None = None, wording: Wording = CLIP) -> list[dict]:
    """The edit of a set of images (a clip's frames; an asset's views with ``wording``) after ``front`` (the model's
    loader ``model``, the set's Load Image ``image``, and what ``pixels`` names): the images to edit, VAE Encode, DDIM
    Invert, Direct Inversion, the pair ``editor`` (key ``inject``: its type and widgets; model, clip and the inverted
    LATENT connected here), then on its MODEL the ``aligner`` (a node's type and widgets, given the MODEL and the
    inverted LATENT; default with ``cross_frame``: Cross-Frame Attention, sparse-causal), Apply Inversion, one KSampler
    (Advanced) run of the 2F rows, the edited images saved (each and an animated PNG), the reconstruction previewed."""
    w = wording
    editor = dict(editor, key="inject",
                  inputs={"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")})
    if aligner is None and cross_frame:
        aligner = {"type": "InvertEditCrossFrameAttention",
                   "widgets": {"anchors": "first and previous", "anchor_frames": "", "min_channels": 0}}
    patched = "inject"
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        *front,
        {"key": "frames", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": w.count},
         "inputs": {"image": (pixels, "IMAGE")}, "title": f"{w.noun.capitalize()} to edit"},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": source}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Source prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("frames", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        editor,
    ]
    if aligner is not None:
        nodes.append(dict(aligner, key="cross", inputs={"model": ("inject", "MODEL"), "latent": ("invert", "LATENT")}))
        patched = "cross"
    return nodes + [
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": (patched, "MODEL"), "inversion": ("direct", 0)}},
        dict(pair_sampler(EDIT_CFG, "inject"), inputs=dict(pair_sampler(EDIT_CFG, "inject")["inputs"],
                                                           model=("apply", "MODEL"))),
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "source_frames", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": w.count},
         "inputs": {"image": ("decode", "IMAGE")}, "title": f"The source {w.noun} (rows 0 to {w.letter}-1)"},
        {"key": "edited_frames", "type": "ImageFromBatch",
         "widgets": {"batch_index": w.count, "length": w.count},
         "inputs": {"image": ("decode", "IMAGE")}, "title": f"The edited {w.noun} (rows {w.letter} to 2{w.letter}-1)"},
        {"key": "save_frames", "type": "SaveImage", "widgets": {"filename_prefix": w.prefix},
         "inputs": {"images": ("edited_frames", "IMAGE")}, "title": f"Edit (the {w.noun})"},
        {"key": "save_animation", "type": "SaveAnimatedPNG",
         "widgets": {"filename_prefix": w.prefix, "fps": 8.0, "compress_level": 4},
         "inputs": {"images": ("edited_frames", "IMAGE")}, "title": "Edit (animated PNG)"},
        {"key": "show_reconstruction", "type": "PreviewImage", "inputs": {"images": ("source_frames", "IMAGE")},
         "title": "Reconstruction"},
    ]
