"""Custom Diffusion's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.subjects import class_drawing, subject_front
from ...workflows.toy import ONE_OBJECT_WORLD, TOY_WORLDS, draw_samples, toy_note


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


WORKFLOWS = {"custom_diffusion_subject": custom_diffusion_subject}
