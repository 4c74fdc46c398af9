"""The SV3D orbit workflow (issue 83): one image -> SV3D's orbit views (the host's Image Only Checkpoint Loader,
SV3D_Conditioning, one KSampler run of all views, VAE Decode) -> the pack's consistent view-set edit
(``workflows/views.py``: an SD1.5 checkpoint, the views inverted in one batched run and edited as a pair with
Cross-View Attention) -> the edited views saved as frames and as an animated PNG. Plain data.

SV3D (Voleti et al., "SV3D: Novel Multi-view Synthesis and 3D Generation from a Single Image using Latent Video
Diffusion", ECCV 2024) fine-tunes Stable Video Diffusion to draw an orbit around the object of one image: 21 frames at
576 x 576, evenly spaced in azimuth (360/21 = 17.1 degrees apart) at one elevation. The authors' sampler
(generative-models, ``scripts/sampling/simple_video_sample.py`` and ``configs/sv3d_u.yaml``): 50 Euler EDM steps
(sigma 700 down to 0.002, Karras' rho 7: the host's euler / karras), a triangle-wave guidance scale over the frames from
1.0 to 2.5 (``TrianglePredictionGuider``: the host's VideoTriangleCFGGuidance, min_cfg 1.0, with cfg 2.5), the input
on a white background, the object centred and filling 85 % of the frame."""
from __future__ import annotations

from collections.abc import Callable

from .checkpoint import PHOTO, PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from .clips import Wording, clip_nodes
from .toy import SOURCE_PROMPT, TARGET_PROMPT
from .views import CROSS_VIEW, HOW

SV3D_CKPT = "sv3d_u.safetensors"   # huggingface.co/stabilityai/sv3d (SV3D_u: no camera input; sv3d_p.safetensors too)
ORBIT_VIEWS = 21                   # SV3D's frames: an orbit of 21 views
SV3D_SIZE = 576                    # SV3D's training size (px, square)
SV3D_STEPS = 50                    # the authors' sampling steps
SV3D_CFG = 2.5                     # the authors' guidance: a triangle wave over the frames from 1.0 to 2.5
SV3D_MIN_CFG = 1.0
ORBIT = Wording("views", "V", ORBIT_VIEWS, "invertedit/sv3d_orbit_edit")
NAME = "SV3D - Edit the orbit views of one image (your models)"
ORBIT_VIEW_SET = "View Set (the orbit's views and azimuths)"


def _inject(source: str, target: str, cross: float, self_: float) -> dict:
    """Attention Inject (Prompt-to-Prompt replace) of a view set, the local blend off (it masks one image); as the
    view-set templates' (``techniques/cross_view_attention/workflows.py``)."""
    return {"type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                        "cross_replace": cross, "self_replace": self_, "local_blend": False}}


def orbit_nodes(image: str = "image") -> list[dict]:
    """SV3D's orbit of the picture ``image`` names (node ``orbit``: an IMAGE batch of ORBIT_VIEWS views, SV3D_SIZE px):
    Image Only Checkpoint Loader (``sv3d``), VideoTriangleCFGGuidance, SV3D_Conditioning, KSampler, VAE Decode, and a
    preview of the orbit."""
    return [
        {"key": "sv3d", "type": "ImageOnlyCheckpointLoader", "widgets": {"ckpt_name": SV3D_CKPT},
         "title": "Image Only Checkpoint Loader (SV3D)", "stage": "load"},
        {"key": "orbit_guidance", "type": "VideoTriangleCFGGuidance", "widgets": {"min_cfg": SV3D_MIN_CFG},
         "inputs": {"model": ("sv3d", "MODEL")}, "title": "Orbit guidance (1.0 to 2.5 and back over the views)",
         "stage": "load"},
        {"key": "orbit_conditioning", "type": "SV3D_Conditioning",
         "widgets": {"width": SV3D_SIZE, "height": SV3D_SIZE, "video_frames": ORBIT_VIEWS, "elevation": 0.0},
         "inputs": {"clip_vision": ("sv3d", "CLIP_VISION"), "init_image": (image, "IMAGE"), "vae": ("sv3d", "VAE")},
         "title": "SV3D_Conditioning (the orbit: 21 views)", "stage": "load"},
        {"key": "orbit_sample", "type": "KSampler",
         "widgets": {"seed": 0, "steps": SV3D_STEPS, "cfg": SV3D_CFG, "sampler_name": "euler", "scheduler": "karras",
                     "denoise": 1.0},
         "inputs": {"model": ("orbit_guidance", "MODEL"), "positive": ("orbit_conditioning", 0),
                    "negative": ("orbit_conditioning", 1), "latent_image": ("orbit_conditioning", 2)},
         "title": "KSampler (SV3D: every view in one run)", "stage": "load"},
        {"key": "orbit", "type": "VAEDecode", "inputs": {"samples": ("orbit_sample", "LATENT"), "vae": ("sv3d", "VAE")},
         "title": "The orbit views", "stage": "load"},
        {"key": "show_orbit", "type": "PreviewImage", "inputs": {"images": ("orbit", "IMAGE")},
         "title": "The orbit views (SV3D)"},
    ]


def orbit_azimuths(views: int = ORBIT_VIEWS) -> str:
    """The orbit's azimuths as View Set takes them (degrees, one a view): view i at (i + 1) * 360 / views from the
    input's, as the authors' SV3D script lays the orbit out (``simple_video_sample.py``: the last view at 0, the
    input's)."""
    return ", ".join(f"{(i + 1) * 360 / views:.1f}".removesuffix(".0") for i in range(views))


def orbit_layout(views: int = ORBIT_VIEWS) -> str:
    """View Set's layout of the orbit: a name a view, in the batch's order."""
    return ", ".join(f"view {i + 1}" for i in range(views))


def sv3d_orbit_edit(view_set: Callable[[str], dict] | None = None, end: Callable[[], list[dict]] | None = None) -> dict:
    """The template: SV3D's orbit of one image, edited as a view set; with ``view_set`` (the View Set node of the views
    a key names: node ``viewset``) and ``end`` (the 3D end's nodes, after the edited views ``edited_frames`` and the
    View Set) the edited orbit's front, left, back and right views rebuilt in 3D (``techniques/views_to_3d`` passes
    its own)."""
    to_3d = view_set is not None and end is not None
    intro = (
        "# SV3D orbit views of one image, edited consistently" + (" and rebuilt in 3D" if to_3d else "")
        + " (your models)\n\n"
        f"**SV3D** draws {ORBIT_VIEWS} views of the object in one picture, an orbit around it at one elevation, "
        f"360/{ORBIT_VIEWS} = 17.1 degrees apart (the authors' script lays it out as view i at azimuth "
        f"(i+1)·360/{ORBIT_VIEWS} from the input's: the last view faces as the input does). The views are edited with "
        "one prompt edit as a view set, kept consistent"
        + (", and the edited orbit's views nearest 0, 90, 180 and 270 degrees (**View Set**'s azimuths) become "
           "Hunyuan3D-2mv's front, left, back and right views of a mesh (if it comes out mirrored, SV3D's orbit turns "
           "the other way for your picture: give View Set the azimuths 360 minus these)." if to_3d else ".")
        + "\n\n**To run it on your models**:\n\n"
        f"1. **Image Only Checkpoint Loader (SV3D)**: `{SV3D_CKPT}` (or `sv3d_p.safetensors`, which also takes the "
        "orbit's elevation and azimuths: SV3D_Conditioning asks it for view i at i·360/20 degrees, first and last the "
        "input's; give View Set those azimuths then) from huggingface.co/stabilityai/sv3d (gated: accept its licence on the page), in "
        "`models/checkpoints`; about 9 GB (float32: the 1.52 B-parameter video UNet with the CLIP ViT-H image encoder "
        "and the VAE inside), loaded in fp16 on a GPU.\n"
        f"2. **Load Checkpoint**: your SD1.5 checkpoint ({SD15.detail}): it edits the views.\n"
        + ("3. **Image Only Checkpoint Loader (Hunyuan3D-2mv)**: see the Hunyuan3D-2 template's note for its file.\n"
           if to_3d else "")
        + f"{4 if to_3d else 3}. **Load Image**: one object, centred, on a white background (SV3D was trained on such "
        f"pictures, at {SV3D_SIZE}x{SV3D_SIZE}; SV3D_Conditioning scales the picture to its width and height).\n"
        f"{5 if to_3d else 4}. **Source prompt** (and Attention Inject's source_prompt): the object as it is; "
        "**target_prompt**: the same words with the one you change.\n\n"
        f"SV3D with the authors' sampler: {SV3D_STEPS} euler steps on the karras schedule, guidance rising from "
        f"{SV3D_MIN_CFG} on the first view to {SV3D_CFG} in the middle of the orbit and back (**VideoTriangleCFGGuidance**"
        " and cfg). **Scale Image to Total Pixels** brings the views to SD1.5's size. Attention Inject with PIE-Bench's "
        "Prompt-to-Prompt settings (cross-attention 0.4 of the steps, self-attention 0.6). " + HOW + f" Here V = "
        f"{ORBIT_VIEWS}. Cost: the orbit's 50 steps are about 0.55x the arithmetic of the edit of its views (1,763 T "
        "against 3,202 T multiply-adds: workshop/benchmarks/sv3d_cost.py). Memory: SV3D samples its 21 views in one "
        "batch at 576 px (its UNet about 3 GB in fp16, the image encoder 1.3 GB; 21 views of 576 px are the pixels of "
        f"about 7 SDXL images); the edit samples 2V = {2 * ORBIT_VIEWS} rows at 512 px (about what 42 images at 512 px "
        "take): edit a part of the orbit with **Views to edit** (and the two Image From Batch nodes after the decode) "
        "where memory is short" + (" (and give View Set that part's names and azimuths)." if to_3d else "."))
    front = [
        *model_loaders(SD15),
        {"key": "image", "type": "LoadImage", "widgets": {"image": PHOTO},
         "title": "Load Image (one object, white background)"},
        *orbit_nodes("image"),
        {"key": "resize", "type": "ImageScaleToTotalPixels",
         "widgets": {"upscale_method": "lanczos", "megapixels": megapixels(SD15)},
         "inputs": {"image": ("orbit", "IMAGE")}, "title": "Scale Image (SD1.5: 0.25 MP, its shape kept)"},
    ]
    pixels = "resize"
    if to_3d:
        node = view_set("resize")
        front.append(dict(node, widgets=dict(node.get("widgets", {}), layout=orbit_layout(), azimuths=orbit_azimuths(),
                                             elevations=""), title=ORBIT_VIEW_SET))
        pixels = "viewset"
    nodes = clip_nodes(intro, front, PHOTO_SOURCE, _inject(PHOTO_SOURCE, PHOTO_TARGET, 0.4, 0.6), pixels=pixels,
                       cross_frame=False, aligner=CROSS_VIEW, wording=ORBIT)
    return {"nodes": nodes + (end() if to_3d else []), "result": "save_frames"}


#: on the built-in models: an orbit of 4 views (the card's run; a CPU edits 21 views x 2 x 2 rows slowly)
TOY_VIEWS = 4
TOY_ORBIT = {"SV3D_Conditioning": {"width": 128, "height": 128, "video_frames": TOY_VIEWS},
             ORBIT_VIEW_SET: {"layout": orbit_layout(TOY_VIEWS), "azimuths": orbit_azimuths(TOY_VIEWS)},
             "Views to edit": {"length": TOY_VIEWS}, "The source views (rows 0 to V-1)": {"length": TOY_VIEWS},
             "The edited views (rows V to 2V-1)": {"batch_index": TOY_VIEWS, "length": TOY_VIEWS}}
#: the tests' quick run: the 4-view orbit at 64 px in 4 steps, its views edited in 5 steps
QUICK_ORBIT = {"SV3D_Conditioning": {"width": 64, "height": 64}, "KSampler": {"steps": 4},
               "InvertEditDDIMInvert": {"steps": 5}, "KSamplerAdvanced": {"steps": 5}}

WORKFLOWS = {NAME: sv3d_orbit_edit}
#: on the built-in models (tests, card): the tiny random SV3D (the runner swaps Image Only Checkpoint Loader for the
#: Demo 3D Model's sv3d), an orbit of TOY_VIEWS views at 128 px, which are noise, edited on the one-object Toy World
#: Model at its 128 px with the toy world's prompts (the source prompt's String node: its ``value``)
CHECKPOINT = {NAME: ({**TOY_ORBIT, "Source prompt": {"value": SOURCE_PROMPT},
                      "InvertEditAttentionInject": {"target_prompt": TARGET_PROMPT}},
                     QUICK_ORBIT)}
CHECKPOINT_BUILTIN = {NAME: "toy-one-object"}


def with_3d(view_set: Callable[[str], dict], to_3d: Callable[[dict, dict], list[dict]], stage: dict, quick_3d: dict,
            ckpt: str) -> tuple[dict, dict]:
    """(WORKFLOWS, CHECKPOINT) of the template with a 3D end: ``techniques/views_to_3d``'s ``view_set(pixels)`` (its
    View Set node) and ``to_3d(loader, stage)`` (its Hunyuan3D-2mv end after the edited views, from Image Only
    Checkpoint Loader of ``ckpt`` at ``stage``'s settings); ``quick_3d`` (by node type or title): the 3D stage's
    settings in the runs on the built-in models."""
    loader = {"key": "model3d", "type": "ImageOnlyCheckpointLoader", "widgets": {"ckpt_name": ckpt},
              "title": "Image Only Checkpoint Loader (Hunyuan3D-2mv)"}
    toy, quick = CHECKPOINT[NAME]
    shape = {k: dict(v) for k, v in quick_3d.items() if k != "KSampler"}   # KSampler: the orbit's is QUICK_ORBIT's
    return ({NAME: lambda: sv3d_orbit_edit(view_set, lambda: to_3d(loader, stage))},
            {NAME: ({**toy, **shape}, {**quick, **{k: dict(v) for k, v in quick_3d.items()}})})
