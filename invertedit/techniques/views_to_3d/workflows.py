"""Views to 3D's example workflows (``example_workflows/``): an asset's four views edited consistently (the view-set
edit of ``invertedit/workflows/views.py``: one inversion, Attention Inject, Cross-View Attention, one KSampler
(Advanced) run), then rebuilt in 3D by the host's Hunyuan3D-2mv nodes as ComfyUI's own Hunyuan3D-2mv template wires
them (Image Only Checkpoint Loader, CLIP Vision Encode with crop none, Hunyuan3Dv2ConditioningMultiView,
ModelSamplingAuraFlow shift 1, EmptyLatentHunyuan3Dv2 3072, KSampler 20 steps cfg 7.5 euler normal, VAE Decode
Hunyuan3D 8000 chunks at octree 256, VoxelToMesh surface net 0.6, SaveGLB). ``python -m workshop.make_workflows``
writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_SOURCE, PHOTO_TARGET, SD15, megapixels, model_loaders
from ...workflows.toy import MODEL_LOADER, SOURCE_PROMPT, TARGET_PROMPT, TOY_WORLD, TOY_WORLDS, toy_note
from ...workflows.views import HOW, QUICK_VIEWS, VIEW_ASSET, VIEW_COUNT, view_edit_nodes
from .layout import DEFAULT_LAYOUT

#: Hunyuan3D-2mv as ComfyUI's template loads it (Image Only Checkpoint Loader: MODEL, CLIP_VISION (its DINOv2 giant),
#: VAE (its ShapeVAE) from one file in models/checkpoints)
HUNYUAN3D_MV_CKPT = "hunyuan3d-dit-v2-mv_fp16.safetensors"
HUNYUAN3D_MV_URL = ("https://huggingface.co/Comfy-Org/hunyuan3D_2.0_repackaged/resolve/main/split_files/"
                    "hunyuan3d-dit-v2-mv_fp16.safetensors")
#: the template's 3D stage (its widgets)
TEMPLATE_3D = {"resolution": 3072, "steps": 20, "cfg": 7.5, "num_chunks": 8000, "octree_resolution": 256,
               "threshold": 0.6}
#: the toy workflow's 3D stage on the Demo 3D Model's tiny random Hunyuan3D-2 (256 latent tokens, a 33^3 grid: a
#: second of the CPU's; its mesh is noise: tiny_3d_models says why it is never empty)
TOY_3D = {"resolution": 256, "steps": 20, "cfg": 7.5, "num_chunks": 8000, "octree_resolution": 32, "threshold": 0.6}
#: the tests' quick 3D stage (2 sampling steps, a 17^3 grid: the mechanics)
QUICK_3D = {"EmptyLatentHunyuan3Dv2": {"resolution": 256}, "KSampler": {"steps": 2},
            "VAEDecodeHunyuan3D": {"octree_resolution": 16}}
#: the tests' quick edit: 5 steps (the view-set edit's own templates test it at QUICK_VIEWS' 10; here the 3D end is
#: under test, and the edit is 85 % of the run's time)
QUICK_EDIT = {ref: dict(values, steps=5) for ref, values in QUICK_VIEWS.items()}
GLB_PREFIX = "invertedit/views_to_3d"


def inject(source: str, target: str, cross: float, self_: float) -> dict:
    """Attention Inject (Prompt-to-Prompt replace) of a view set: the local blend off (it masks one image)."""
    return {"type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": source, "target_prompt": target, "mode": "replace", "reweight": "",
                        "cross_replace": cross, "self_replace": self_, "local_blend": False}}


def view_set(pixels: str) -> dict:
    """View Set of the views ``pixels`` (node key ``viewset``), named as Hunyuan3D-2mv takes them."""
    return {"key": "viewset", "type": "InvertEditViewSet",
            "widgets": {"layout": DEFAULT_LAYOUT, "azimuths": "", "elevations": ""},
            "inputs": {"views": (pixels, "IMAGE")}, "title": "View Set (front, left, back, right)"}


def to_3d(loader: dict, stage: dict) -> list[dict]:
    """The 3D end: the edited views (``edited_frames``) of the View Set (``viewset``) into Hunyuan3D-2mv (``loader``:
    node key ``model3d``, MODEL / CLIP_VISION / VAE) at ``stage``'s settings, a GLB saved."""
    return [
        loader,
        {"key": "views3d", "type": "InvertEditViewsToHunyuan3D", "widgets": {"crop": "none"},
         "inputs": {"clip_vision": ("model3d", "CLIP_VISION"), "views": ("edited_frames", "IMAGE"),
                    "view_set": ("viewset", "VIEWS")}, "title": "Views to Hunyuan3D (front, left, back, right)"},
        {"key": "shift3d", "type": "ModelSamplingAuraFlow", "widgets": {"shift": 1.0},
         "inputs": {"model": ("model3d", "MODEL")}},
        {"key": "latent3d", "type": "EmptyLatentHunyuan3Dv2",
         "widgets": {"resolution": stage["resolution"], "batch_size": 1}},
        {"key": "sample3d", "type": "KSampler",
         "widgets": {"seed": 0, "steps": stage["steps"], "cfg": stage["cfg"], "sampler_name": "euler",
                     "scheduler": "normal", "denoise": 1.0},
         "inputs": {"model": ("shift3d", "MODEL"), "positive": ("views3d", "positive"),
                    "negative": ("views3d", "negative"), "latent_image": ("latent3d", "LATENT")},
         "title": "KSampler (the shape)"},
        {"key": "decode3d", "type": "VAEDecodeHunyuan3D",
         "widgets": {"num_chunks": stage["num_chunks"], "octree_resolution": stage["octree_resolution"]},
         "inputs": {"samples": ("sample3d", "LATENT"), "vae": ("model3d", "VAE")}},
        {"key": "mesh", "type": "VoxelToMesh", "widgets": {"algorithm": "surface net", "threshold": stage["threshold"]},
         "inputs": {"voxel": ("decode3d", "VOXEL")}},
        {"key": "glb", "type": "SaveGLB", "widgets": {"filename_prefix": GLB_PREFIX}, "inputs": {"mesh": ("mesh", "MESH")},
         "title": "Save GLB (the rebuilt asset)"},
    ]


HOW_3D = ("**View Set** names the views (front, left, back, right: the four Hunyuan3D-2mv takes; or give their "
          "azimuths, 0 / 90 / 180 / 270, to pick them from an orbit). " + HOW + " **Views to Hunyuan3D** gives the "
          "edited views (rows V to 2V-1) to **CLIP Vision Encode** and the host's **Hunyuan3Dv2ConditioningMultiView** "
          "by their names, and it refuses views that are not the View Set's (another count or size). The 3D end is "
          "ComfyUI's Hunyuan3D-2mv template: **ModelSamplingAuraFlow** (shift 1), **EmptyLatentHunyuan3Dv2**, "
          "**KSampler**, **VAE Decode Hunyuan3D**, **VoxelToMesh** and **SaveGLB** (the mesh in output/"
          f"{GLB_PREFIX.split('/')[0]}/).")


def toy_views_to_3d(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    s = TOY_3D
    intro = (
        "# Views to 3D: edit an asset's four views consistently and rebuild it with Hunyuan3D-2\n\n"
        f"**Load Image** loads the animated PNG as {VIEW_COUNT} views of one scene. " + HOW_3D + "\n\n"
        + toy_note(world) + " The 3D end runs on the **Demo 3D Model** (a tiny Hunyuan3D-2 with RANDOM weights: its "
        f"mesh is noise, the mechanics are real; {s['resolution']} latent tokens, octree {s['octree_resolution']}). "
        "For a real mesh use the template 'Hunyuan3D-2 - Edit four views and rebuild in 3D (your models)'.")
    front = [dict(MODEL_LOADER, widgets={"world": world}),
             {"key": "image", "type": "LoadImage", "widgets": {"image": VIEW_ASSET},
              "title": "Load the views (animated PNG)"},
             view_set("image")]
    loader = {"key": "model3d", "type": "InvertEditDemo3DModel", "widgets": {"family": "hunyuan3d2", "seed": 0},
              "title": "Demo 3D Model (tiny random Hunyuan3D-2; replace with Image Only Checkpoint Loader)"}
    nodes = view_edit_nodes(intro, front, w["source"], inject(w["source"], w["target"], 0.8, 0.4), pixels="viewset")
    return {"nodes": nodes + to_3d(loader, s), "result": "save_frames"}


def hunyuan3d_views_to_3d() -> dict:
    t = TEMPLATE_3D
    intro = (
        "# Hunyuan3D-2: edit four views of an asset consistently and rebuild it in 3D (your models)\n\n"
        "**To run it on your models**:\n\n"
        f"1. **Load Checkpoint**: your SD1.5 checkpoint for the edit ({SD15.detail}).\n"
        f"2. **Image Only Checkpoint Loader**: Hunyuan3D-2mv, `{HUNYUAN3D_MV_CKPT}` ({HUNYUAN3D_MV_URL}; "
        "Comfy-Org's repackaging of tencent/Hunyuan3D-2mv's hunyuan3d-dit-v2-mv, Tencent Hunyuan community licence) in "
        "`ComfyUI/models/checkpoints/`: one file holding the DiT, its image encoder (DINOv2 giant: the CLIP_VISION "
        "output) and its ShapeVAE (the VAE output), as ComfyUI's own Hunyuan3D-2mv template loads it.\n"
        "3. **Load Image**: your views as one animated PNG/WEBP (front, left, back, right, in that order), or load each "
        "view and join them with **Batch Images** (the same size); set **View Set**'s layout to their order.\n"
        f"4. **Scale Image to Total Pixels** brings each view to about {SD15.size}x{SD15.size} pixels in all for the "
        "edit; Hunyuan3D's encoder resizes them to 518 px itself.\n"
        "5. **Source prompt** (and Attention Inject's source_prompt): your asset as it is; **target_prompt**: the same "
        "words with the one you change.\n\n"
        "Attention Inject with PIE-Bench's Prompt-to-Prompt settings (cross-attention 0.4 of the steps, self-attention "
        "0.6). " + HOW_3D + f" The template's settings: {t['resolution']} latent tokens, {t['steps']} steps at cfg "
        f"{t['cfg']:g}, octree {t['octree_resolution']}. The step-distilled Hunyuan3D-2mv-turbo "
        "(`hunyuan3d-dit-v2-mv-turbo_fp16.safetensors`, same folder) takes fewer steps at cfg 1 (ComfyUI's turbo "
        "template). Views of the asset alone on a plain background give the cleanest shapes.")
    front = [*model_loaders(SD15),
             {"key": "image", "type": "LoadImage", "widgets": {"image": VIEW_ASSET},
              "title": "Load the views (your animated PNG/WEBP)"},
             {"key": "resize", "type": "ImageScaleToTotalPixels",
              "widgets": {"upscale_method": "lanczos", "megapixels": megapixels(SD15)},
              "inputs": {"image": ("image", "IMAGE")}, "title": "Scale Image (SD1.5: 0.25 MP, its shape kept)"},
             view_set("resize")]
    loader = {"key": "model3d", "type": "ImageOnlyCheckpointLoader", "widgets": {"ckpt_name": HUNYUAN3D_MV_CKPT},
              "title": "Image Only Checkpoint Loader (Hunyuan3D-2mv)"}
    nodes = view_edit_nodes(intro, front, PHOTO_SOURCE, inject(PHOTO_SOURCE, PHOTO_TARGET, 0.4, 0.6), pixels="viewset")
    return {"nodes": nodes + to_3d(loader, t), "result": "save_frames"}


TOY_NAME = "Toy - Views to 3D (Hunyuan3D-2)"
CHECKPOINT_NAME = "Hunyuan3D-2 - Edit four views and rebuild in 3D (your models)"
WORKFLOWS = {TOY_NAME: toy_views_to_3d, CHECKPOINT_NAME: hunyuan3d_views_to_3d}
QUICK_TOY = {TOY_NAME: {**QUICK_EDIT, **QUICK_3D}}
#: on the Toy World Model and the Demo 3D Model (tests, card): the toy views and the toy world's prompts; the runner's
#: builtin swaps Image Only Checkpoint Loader of a hunyuan3d file for the Demo 3D Model's hunyuan3d2
CHECKPOINT = {CHECKPOINT_NAME: (
    {"Load the views (your animated PNG/WEBP)": {"image": VIEW_ASSET}, "Source prompt": {"value": SOURCE_PROMPT},
     "InvertEditAttentionInject": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT},
     **{k: dict(v) for k, v in QUICK_3D.items()}},
    QUICK_EDIT)}
from ...workflows import orbit as _orbit; _w, _c = _orbit.with_3d(view_set, to_3d, TEMPLATE_3D, QUICK_3D, HUNYUAN3D_MV_CKPT); WORKFLOWS.update(_w); CHECKPOINT.update(_c); CHECKPOINT_BUILTIN = _orbit.CHECKPOINT_BUILTIN  # noqa: E402, E702  (issue 83: SV3D's orbit template, invertedit/workflows/orbit.py)
