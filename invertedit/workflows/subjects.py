"""The parts the personalisation workflows share (DreamBooth, Custom-Edit, Textual Inversion, Custom
Diffusion): the subject's photos on the one-object toy world, the class images drawn by the model,
the teaching nodes' prompts, and Custom-Edit's inversion and edit after a training. Plain data."""
from __future__ import annotations

from ..workflows.checkpoint import strip
from ..workflows.toy import EDIT_CFG, MODEL_LOADER, ONE_OBJECT_WORLD, pair_sampler


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
