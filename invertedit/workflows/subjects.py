"""The parts the personalisation workflows share (DreamBooth, Custom-Edit, Textual Inversion, Custom
Diffusion): the subject's photos on the one-object toy world, the class images drawn by the model,
the teaching nodes' prompts, and Custom-Edit's inversion and edit after a training. Plain data."""
from __future__ import annotations

from ..workflows.checkpoint import PHOTO, strip
from ..workflows.toy import EDIT_CFG, MODEL_LOADER, ONE_OBJECT_WORLD, TOY_WORLDS, pair_sampler


def subject_front(intro: str, photos: str, world: str = ONE_OBJECT_WORLD) -> list[dict]:
    """The personalisation workflows' front: the note, the Toy World Model (the one-object world's by
    default), the subject's photos (an animated PNG: its frames load as one batch) and their VAE Encode
    ('encode')."""
    return [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "photos", "type": "LoadImage", "widgets": {"image": photos},
         "title": "The subject's photos (4 frames: one batch)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("photos", "IMAGE"), "vae": ("model", "VAE")}},
    ]


def class_drawing(d: dict, side: int, sampler: str = "class_images", noun: str = "images") -> list[dict]:
    """The personalisation workflows' class prompt, empty negative and the ``d["class_images"]`` class
    images the untouched model draws from it (the stock KSampler, keyed ``sampler``)."""
    return [
        {"key": "class", "type": "CLIPTextEncode", "widgets": {"text": d["class"]},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Class prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "class_latent", "type": "EmptyLatentImage",
         "widgets": {"width": side, "height": side, "batch_size": d["class_images"]}, "title": f"Class {noun} to draw"},
        {"key": sampler, "type": "KSampler",
         "widgets": {"seed": 7, "steps": 20, "cfg": EDIT_CFG, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                     "denoise": 1.0},
         "inputs": {"model": ("model", "MODEL"), "positive": ("class", 0), "negative": ("empty", 0),
                    "latent_image": ("class_latent", "LATENT")},
         "title": f"Class {noun}, drawn by the untouched model"},
    ]


def dreambooth_teaching(d: dict, side: int, node: str, widgets: dict, save_key: str, prefix: str) -> list[dict]:
    """The DreamBooth workflows' middle, after ``subject_front``: the prompts and class images, the
    training ``node`` ('teach') with ``widgets``, Save LoRA Weights of its second output (``prefix``),
    and the samples' empty latent ('noise_latent')."""
    return _dreambooth_prompts(d, side) + [
        {"key": "teach", "type": node, "widgets": dict(widgets, batch_size=1, seed=0),
         "inputs": {"model": ("model", "MODEL"), "instance_images": ("encode", "LATENT"),
                    "instance_prompt": ("instance", 0), "class_images": ("class_images", "LATENT"),
                    "class_prompt": ("class", 0)}},
        {"key": save_key, "type": "SaveLoRANode", "widgets": {"prefix": prefix}, "inputs": {"lora": ("teach", 1)}},
        {"key": "noise_latent", "type": "EmptyLatentImage", "widgets": {"width": side, "height": side, "batch_size": 4},
         "title": f"Empty latent (4 samples at the toy world's {side} px)"},
    ]


def _dreambooth_prompts(d: dict, side: int) -> list[dict]:
    """The DreamBooth workflows' instance prompt, then ``class_drawing``."""
    return [{"key": "instance", "type": "CLIPTextEncode", "widgets": {"text": d["instance"]},
             "inputs": {"clip": ("model", "CLIP")}, "title": "Instance prompt (identifier + class)"}] + \
        class_drawing(d, side)


def custom_edit(d: dict, image: str, image_title: str, target: str, mode: str, steps: int, edit_title: str,
                prefix: str, strip_title: str) -> list[dict]:
    """Custom-Edit (Choi et al.) after a DreamBooth workflow's training ('teach'): Load Image of ``image``, DDIM
    Invert on the taught model (``steps``, cfg 1) with ``d["source"]``, Direct Inversion, Attention Inject
    (``mode``, the source to ``target``, ``d``'s cross / self fractions and local blend), one stock KSampler
    (Advanced) run of the pair at ``d["cfg"]``; the strip image | reconstruction | edit saved as ``prefix``."""
    taught = ("teach", "MODEL")
    sampler = pair_sampler(d["cfg"])
    sampler["widgets"]["steps"] = steps
    nodes = [
        {"key": "image", "type": "LoadImage", "widgets": {"image": image}, "title": image_title},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": d["source"]},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Source prompt"},
        {"key": "encode_image", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": steps, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
         "inputs": {"model": taught, "latent": ("encode_image", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        {"key": "inject", "type": "InvertEditAttentionInject",
         "widgets": {"source_prompt": d["source"], "target_prompt": target, "mode": mode, "reweight": "",
                     "cross_replace": d["cross"], "self_replace": d["self"], "blend_source_words": d["blend"][0],
                     "blend_target_words": d["blend"][1], "blend_threshold": d["threshold"], "blend_start": 0.2},
         "inputs": {"model": taught, "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("inject", "MODEL"), "inversion": ("direct", 0)}},
        dict(sampler, inputs=dict(sampler["inputs"], model=("apply", "MODEL"))),
        {"key": "decode_pair", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "reconstruction", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": "Reconstruction (row 0)"},
        {"key": "edit", "type": "ImageFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": edit_title},
    ]
    return nodes + strip([("image", "image"), ("reconstruction", "reconstruction"), ("edit", "edit")], prefix,
                         strip_title)


# DreamBooth on the toy world (workshop/benchmarks/dreambooth_toy.py measures these settings)
DREAMBOOTH_TOY = {"steps": 500, "learning_rate": 0.0005, "rank": 4, "class_images": 20,
                  "instance": "a sks red square on a blue background", "class": "a red square on a blue background",
                  "photos": "subject_hollow_square.png",
                  # Custom-Edit: the subject put into the sample image in the circle's place
                  "source": "a red circle on a blue background", "blend": ("circle", "square"), "threshold": 0.9,
                  "cross": 0.6, "self": 0.2, "cfg": 3.0}


# ----------------------------------------------------------------------------- on the user's checkpoint
# The personalisation templates for the user's own SD1.5 / SDXL checkpoint (issue 79): the subject's photos are
# SUBJECT_PHOTOS Load Image nodes of ComfyUI's own example.png (checkpoint.PHOTO) batched with the host's Image
# Batch, brought to the family's square size with a centre crop (the training scripts' Resize + CenterCrop at
# --resolution: these pictures are the training set, not an image to edit, whose shape the edit templates keep);
# the class images are drawn by the untouched model SUBJECT_CLASS_BATCH at a time (the scripts'
# --sample_batch_size: a KSampler of 200 at once would not fit a GPU) and rebatched into one batch for the node.

SUBJECT_PHOTOS = 4          # the papers' 3-5 photos (Custom Diffusion's 4-5)
SUBJECT_CLASS_IMAGES = 200  # diffusers' READMEs: --num_class_images=200 (DreamBooth, Custom Diffusion)
SUBJECT_CLASS_BATCH = 4     # the scripts' --sample_batch_size (4)
SUBJECT_SAMPLES = 4         # pictures of the subject drawn at the end
ALL_IN_ONE = 4096           # Rebatch Latents / Images' largest batch: the class images back in one batch
# what the scripts' README inference draws with (diffusers' DreamBooth and Textual Inversion READMEs: 50 steps,
# guidance 7.5); the class images are drawn the same way (the scripts draw them with the pipeline's defaults)
SUBJECT_STEPS, SUBJECT_CFG = 50, 7.5


def rate(x: float) -> str:
    """A learning rate as the papers write it: 1e-4, 4e-5."""
    return f"{x:.0e}".replace("e-0", "e-")


def photos_front(family, intro: str) -> list[dict]:
    """The note, Load Checkpoint (``family``: checkpoint.Family), the subject's photos (``photo_1``...), batched
    (Image Batch) and brought to the family's square size, centre-cropped (``photos``), and their size
    (``photo_size``: Get Image Size, which sets the class images' and samples' size)."""
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        {"key": "model", "type": "CheckpointLoaderSimple", "widgets": {"ckpt_name": family.ckpt},
         "title": f"Load Checkpoint ({family.name})"},
    ]
    for i in range(1, SUBJECT_PHOTOS + 1):
        nodes.append({"key": f"photo_{i}", "type": "LoadImage", "widgets": {"image": PHOTO},
                      "title": f"Photo {i} of your subject"})
    previous = "photo_1"
    for i in range(2, SUBJECT_PHOTOS + 1):
        nodes.append({"key": f"batch_{i}", "type": "ImageBatch", "stage": "load", "collapsed": True,
                      "inputs": {"image1": (previous, "IMAGE"), "image2": (f"photo_{i}", "IMAGE")},
                      "title": f"Image Batch (photos 1-{i})"})
        previous = f"batch_{i}"
    return nodes + [
        {"key": "photos", "type": "ImageScale",
         "widgets": {"upscale_method": "lanczos", "width": family.size, "height": family.size, "crop": "center"},
         "inputs": {"image": (previous, "IMAGE")},
         "title": f"Upscale Image ({family.name}: {family.size}x{family.size}, centre crop, as the scripts train)"},
        {"key": "photo_size", "type": "GetImageSize", "inputs": {"image": ("photos", "IMAGE")}},
    ]


def photos_note(family, photos_for: str) -> str:
    """The personalisation templates' setup steps (``photos_for``: what the node does with the photos)."""
    return (
        f"**To run it on your model** ({family.name}: {family.detail}):\n\n"
        f"1. **Load Checkpoint**: choose your {family.name} checkpoint.\n"
        f"2. **Photo 1-{SUBJECT_PHOTOS} of your subject**: upload {SUBJECT_PHOTOS} photos of it (the papers take 3-5; "
        f"the template opens with ComfyUI's own `example.png` in each). More or fewer: add or remove a **Load Image** "
        "and its **Image Batch** (each photo is brought to the first one's shape). **Upscale Image** brings them to "
        f"{family.size}x{family.size} pixels, cropped to the centre square, as the training scripts do "
        f"({family.name}'s size; {photos_for}).\n"
        "3. The prompts: the ones below, with your subject's class noun in place of *girl*.\n")


def class_drawing_on_checkpoint(prompt: str, decode: bool) -> list[dict]:
    """The class prompt ('class') and the empty negative ('empty'), the ``SUBJECT_CLASS_IMAGES`` class images at
    the photos' size drawn by the untouched model ``SUBJECT_CLASS_BATCH`` at a time (Rebatch Latents, KSampler
    'class_sample'), and gathered into one batch ('class_images'): latents, or pictures with ``decode``."""
    nodes = [
        {"key": "class", "type": "CLIPTextEncode", "widgets": {"text": prompt}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Class prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "class_latent", "type": "EmptyLatentImage", "stage": "teach", "widgets": {"batch_size": SUBJECT_CLASS_IMAGES},
         "inputs": {"width": ("photo_size", "width"), "height": ("photo_size", "height")},
         "title": "Class images to draw"},
        {"key": "class_chunks", "type": "RebatchLatents", "stage": "teach", "widgets": {"batch_size": SUBJECT_CLASS_BATCH},
         "inputs": {"latents": ("class_latent", "LATENT")}, "title": f"Class images: {SUBJECT_CLASS_BATCH} at a time"},
        {"key": "class_sample", "type": "KSampler", "stage": "teach",
         "widgets": {"seed": 7, "steps": SUBJECT_STEPS, "cfg": SUBJECT_CFG, "sampler_name": "ddim",
                     "scheduler": "ddim_uniform", "denoise": 1.0},
         "inputs": {"model": ("model", "MODEL"), "positive": ("class", 0), "negative": ("empty", 0),
                    "latent_image": ("class_chunks", "LATENT")},
         "title": "Class images, drawn by the untouched model"},
    ]
    if decode:
        return nodes + [
            {"key": "class_decode", "type": "VAEDecode", "stage": "teach",
             "inputs": {"samples": ("class_sample", "LATENT"), "vae": ("model", "VAE")}},
            {"key": "class_images", "type": "RebatchImages", "stage": "teach", "widgets": {"batch_size": ALL_IN_ONE},
             "inputs": {"images": ("class_decode", "IMAGE")}, "title": "Class images (one batch)"}]
    return nodes + [
        {"key": "class_images", "type": "RebatchLatents", "stage": "teach", "widgets": {"batch_size": ALL_IN_ONE},
         "inputs": {"latents": ("class_sample", "LATENT")}, "title": "Class images (one batch)"}]


def subject_samples(model: tuple, clip: tuple, prompt: str, title: str, prefix: str, steps: int = SUBJECT_STEPS,
                    cfg: float = SUBJECT_CFG, sampler: str = "ddim",
                    shown: str = "The subject, drawn by the taught model") -> list[dict]:
    """The prompt naming the subject ('subject', encoded with ``clip``), ``SUBJECT_SAMPLES`` pictures of it at the
    photos' size drawn by the stock KSampler on ``model`` (the empty negative 'empty'), decoded and saved
    (``prefix``, titled ``shown``)."""
    return [
        {"key": "subject", "type": "CLIPTextEncode", "widgets": {"text": prompt}, "inputs": {"clip": clip},
         "title": title},
        {"key": "noise_latent", "type": "EmptyLatentImage", "widgets": {"batch_size": SUBJECT_SAMPLES},
         "inputs": {"width": ("photo_size", "width"), "height": ("photo_size", "height")},
         "title": f"Empty latent ({SUBJECT_SAMPLES} pictures at the photos' size)"},
        {"key": "sample", "type": "KSampler",
         "widgets": {"seed": 0, "steps": steps, "cfg": cfg, "sampler_name": sampler, "scheduler": "ddim_uniform",
                     "denoise": 1.0},
         "inputs": {"model": model, "positive": ("subject", 0), "negative": ("empty", 0),
                    "latent_image": ("noise_latent", "LATENT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": prefix}, "inputs": {"images": ("decode", "IMAGE")},
         "title": shown},
    ]


# Running them on the one-object toy world (the toy overrides; make_workflows.CHECKPOINT_BUILTINS): its sample, a red
# circle on blue, as the photos (the runner's builtin loads it in every Load Image), its prompt, the toy model's cfg and
# the toy workflows' 20 sampling steps; the quick run (the tests) on 4 class images drawn 2 at a time (the rebatching
# runs) at 5 sampling steps
TOY_SOURCE = TOY_WORLDS[ONE_OBJECT_WORLD]["source"]   # "a red circle on a blue background"
TOY_SAMPLING = {"KSampler": {"steps": 20, "cfg": EDIT_CFG}}
QUICK_SUBJECT = {"Class images to draw": {"batch_size": 4}, f"Class images: {SUBJECT_CLASS_BATCH} at a time": {"batch_size": 2},
                 "KSampler": {"steps": 5}}
