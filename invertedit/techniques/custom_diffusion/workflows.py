"""Custom Diffusion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import SD15, SDXL, Family
from ...workflows.subjects import (QUICK_SUBJECT, SUBJECT_CLASS_BATCH, SUBJECT_CLASS_IMAGES,
                                   TOY_SAMPLING, TOY_SOURCE, class_drawing, class_drawing_on_checkpoint, photos_front,
                                   photos_note, rate, subject_front, subject_samples)
from ...workflows.toy import ONE_OBJECT_WORLD, TOY_WORLDS, draw_samples, toy_note
from . import ROW


# Custom Diffusion on the toy world: DreamBooth's hollow square (workshop/benchmarks/dreambooth_toy.py --custom-diffusion)
CUSTOM_DIFFUSION_TOY = {"steps": 300, "learning_rate": 0.0003, "batch_size": 2, "class_images": 20, "name": "toy-hollow",
                        "instance": "a {} red square on a blue background", "class": "a red square on a blue background",
                        "photos": "subject_hollow_square.png"}


def custom_diffusion_subject() -> dict:
    d = CUSTOM_DIFFUSION_TOY
    side = TOY_WORLDS[ONE_OBJECT_WORLD]["size"]
    word = f"embedding:{d['name']}"
    intro = (
        "# Custom Diffusion: a subject in the cross-attention keys and values, and a new word\n\n"
        "**Custom Diffusion** (Kumari et al.; as diffusers' train_custom_diffusion.py) teaches the model the subject "
        "of a few photos by changing only the keys and values of its cross-attention layers (the weights that read "
        "the prompt) and learning a new word, written `{}` in the instance prompt "
        f"(\"{d['instance']}\"). Each photo is shrunk onto a grey canvas or zoomed and cropped at random, with "
        "captions to match (\"very small ...\", \"close up ...\"), and the loss counts only the photo. The class "
        "pictures the untouched model drew (stock **KSampler**, **VAE Decode**) keep the class. The node saves the "
        f"word as `models/embeddings/{d['name']}.safetensors` (prompts say `{word}`: encode them with the node's "
        "**clip** output), returns the MODEL with the change, and the change as a LoRA of whole-weight differences "
        "that **Save LoRA Weights** writes and **LoraLoader** applies again.\n\n"
        "The subject is DreamBooth's hollow red square, a shape the toy model never drew. The samples: the new word, "
        "the class prompt on the taught model, and the class prompt before teaching.\n\n"
        f"Settings for the toy model on a CPU (about a minute): {d['steps']} steps at lr {d['learning_rate']:g}, "
        f"batch {d['batch_size']}, {d['class_images']} class pictures. diffusers' README for Stable Diffusion (the "
        "node's defaults): 250 steps at lr 1e-5 x batch 2 x 2 = 4e-5, 200 class pictures.\n\n"
        + toy_note(ONE_OBJECT_WORLD))
    nodes = subject_front(intro, d["photos"])[:-1] + class_drawing(d, side, "class_sample", "pictures") + [
        {"key": "class_images", "type": "VAEDecode",
         "inputs": {"samples": ("class_sample", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "teach", "type": "InvertEditCustomDiffusion",
         "widgets": {"instance_prompt": d["instance"], "name": d["name"], "initializer": "ktn", "steps": d["steps"],
                     "learning_rate": d["learning_rate"], "batch_size": d["batch_size"], "prior_loss_weight": 1.0,
                     "augment": True, "hflip": True, "seed": 0, "class_prompt": d["class"]},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "vae": ("model", "VAE"),
                    "instance_images": ("photos", "IMAGE"), "class_images": ("class_images", "IMAGE")}},
        {"key": "save_lora", "type": "SaveLoRANode", "widgets": {"prefix": "loras/custom_diffusion_toy"},
         "inputs": {"lora": ("teach", 3)}},
        {"key": "subject", "type": "CLIPTextEncode", "widgets": {"text": d["instance"].format(word)},
         "inputs": {"clip": ("teach", "CLIP")}, "title": "A prompt with the new word"},
        {"key": "noise_latent", "type": "EmptyLatentImage", "widgets": {"width": side, "height": side, "batch_size": 4},
         "title": f"Empty latent (4 samples at the toy world's {side} px)"},
    ]
    nodes += draw_samples((("subject", "teach", "subject", "The subject, drawn by the taught model"),
                            ("class", "teach", "class", "The class prompt on the taught model (kept)"),
                            ("before", "model", "class", "The class prompt before teaching")),
                           "invertedit/custom_diffusion")
    return {"nodes": nodes}


# Custom Diffusion on the user's checkpoint: the README's settings are the node's defaults (the row's); its inference
# (diffusers' README): 100 steps at guidance 6, eta 1 (ComfyUI's ddpm sampler: DDIM at eta 1 is DDPM's step)
CUSTOM = {k.split(".")[1]: v for k, v in ROW.settings.items() if k.startswith("InvertEditCustomDiffusion.")}
NAME = "new1"
INSTANCE, CLASS = "a drawing of a {} girl", "a drawing of a girl"
SUBJECT = f"a drawing of a embedding:{NAME} girl on the beach"
SAMPLE_STEPS, SAMPLE_CFG = 100, 6.0


def _custom_diffusion(family: Family) -> dict:
    tag = family.name.lower().replace(".", "")   # sd15, sdxl: the saved files' names
    d = CUSTOM
    sdxl = (" diffusers' script trains SD1.x and SD2.x; on SDXL the node learns the word in both text encoders and "
            "the keys and values of every cross-attention layer at the same settings (the pack's extension, not the "
            "paper's).") if family is SDXL else ""
    intro = (
        f"# {family.name}: Custom Diffusion, your subject in the cross-attention and a new word\n\n"
        + photos_note(family, "the scale augmentation works on square photos; the class images are drawn at the same size") +
        "\n**Custom Diffusion** (Kumari et al.; as diffusers' train_custom_diffusion.py trains it) teaches the model "
        "your subject by changing only the keys and values of its cross-attention layers (the weights that read the "
        "prompt) and learning a new word, written `{}` in the instance prompt "
        f"(\"{INSTANCE}\": the script's \"photo of a <new1> cat\", the word before the class noun), starting from "
        "the rare word *ktn* as the script. Each photo is shrunk onto a grey canvas or zoomed and cropped at random, "
        "captioned to match (\"very small\", \"close up\"), the loss counted on the photo only, and flipped at "
        f"random. {d['steps']} steps at learning rate {rate(d['learning_rate'])} (the README's 1e-5 scaled by its batch "
        f"{d['batch_size']} and doubled with the prior), batch {d['batch_size']}, prior-preservation weight "
        f"{d['prior_loss_weight']:g}: the README's settings, the node's defaults.{{sdxl}} The {SUBJECT_CLASS_IMAGES} "
        "class images (the README's --num_class_images) are drawn by the untouched model from the **Class prompt** "
        f"(\"{CLASS}\"; {SUBJECT_CLASS_BATCH} at a time; the README retrieves real photos of the class instead, its "
        "--real_prior, which ComfyUI cannot): they keep the class from drifting to your subject.\n\n"
        f"The node saves the word as `models/embeddings/{NAME}.safetensors` (*name*: prompts say `embedding:{NAME}`) "
        "and returns the MODEL with the change and the change as a LoRA of whole-weight differences, which **Save "
        "LoRA Weights** keeps (**LoraLoader** applies it again, with the word). The stock **KSampler** draws the "
        f"subject somewhere new (\"{SUBJECT}\", encoded with the node's **clip** output so that it runs after the "
        f"word is written; {SAMPLE_STEPS} steps at cfg {SAMPLE_CFG:g}, eta 1: the README's inference, ComfyUI's "
        "*ddpm* sampler). The cost: the class images' sampling, then each step one UNet forward of the photos and "
        "class images together and one backward.").replace("{sdxl}", sdxl)
    nodes = photos_front(family, intro) + class_drawing_on_checkpoint(CLASS, decode=True) + [
        {"key": "teach", "type": "InvertEditCustomDiffusion",
         "widgets": dict(d, instance_prompt=INSTANCE, name=NAME, initializer="ktn", augment=True, hflip=True, seed=0,
                         class_prompt=CLASS),
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "vae": ("model", "VAE"),
                    "instance_images": ("photos", "IMAGE"), "class_images": ("class_images", "IMAGE")}},
        {"key": "save_lora", "type": "SaveLoRANode", "widgets": {"prefix": f"loras/custom_diffusion_{tag}"},
         "inputs": {"lora": ("teach", 3)}},
    ] + subject_samples(("teach", "MODEL"), ("teach", "CLIP"), SUBJECT, "Prompt with the new word",
                        f"invertedit/custom_diffusion_{tag}", steps=SAMPLE_STEPS, cfg=SAMPLE_CFG,
                        sampler="ddpm")
    return {"nodes": nodes}


def sd15_custom_diffusion() -> dict:
    return _custom_diffusion(SD15)


def sdxl_custom_diffusion() -> dict:
    return _custom_diffusion(SDXL)


WORKFLOWS = {"Toy - Custom Diffusion subject": custom_diffusion_subject, "SD1.5 - Custom Diffusion": sd15_custom_diffusion,
             "SDXL - Custom Diffusion": sdxl_custom_diffusion}
# The checkpoint templates on the one-object toy world (make_workflows.CHECKPOINT_BUILTINS): its sample (a red circle)
# as the photos, custom_diffusion_subject's toy settings and prompts in the toy world's words; the quick run (the
# tests) trains 10 steps on 4 class images drawn 2 at a time
_TOY = CUSTOM_DIFFUSION_TOY
TOY_CUSTOM = {"InvertEditCustomDiffusion": {"steps": _TOY["steps"], "learning_rate": _TOY["learning_rate"],
                                            "instance_prompt": TOY_SOURCE.replace("a ", "a {} ", 1)},
              "Class prompt": {"value": TOY_SOURCE},
              "Prompt with the new word": {"value": TOY_SOURCE.replace("a ", f"a embedding:{NAME} ", 1)},
              "Class images to draw": {"batch_size": _TOY["class_images"]},
              **TOY_SAMPLING}
QUICK_CUSTOM = dict(QUICK_SUBJECT, InvertEditCustomDiffusion={"steps": 10})
CHECKPOINT = {"SD1.5 - Custom Diffusion": (TOY_CUSTOM, QUICK_CUSTOM), "SDXL - Custom Diffusion": (TOY_CUSTOM, QUICK_CUSTOM)}
CHECKPOINT_BUILTIN = {name: "toy-one-object" for name in CHECKPOINT}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Custom Diffusion subject': 'save_subject'}
