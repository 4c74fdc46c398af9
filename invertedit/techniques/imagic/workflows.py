"""Imagic's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import (EDIT_CFG, ONE_OBJECT_WORLD, TOY_WORLDS, decode_and_save, inversion_nodes, toy_note,
                              vae_roundtrip)


IMAGIC_STEPS = {"embedding": 80, "embedding_lr": 0.01, "fine_tune": 100, "fine_tune_lr": 0.01, "rank": 8}


def imagic_edit(world: str = ONE_OBJECT_WORLD) -> dict:
    s = IMAGIC_STEPS
    w = TOY_WORLDS[world]
    intro = (
        "# Imagic: optimise the text, fine-tune the model, interpolate\n\n"
        "**Imagic Optimize Embedding** (Kawar et al.) starts from the target prompt's embedding and optimises it until "
        "the frozen model reconstructs the image; **Imagic Fine-Tune** then fine-tunes the model on that embedding (a "
        "LoRA on every layer, the host's format: the paper fine-tunes all weights); **Imagic Interpolate** mixes the two "
        "embeddings (alpha = the paper's eta, about 0.7) and the stock **KSampler** draws the result *from noise* with "
        "the fine-tuned model. alpha 0 gives the reconstruction, alpha 0.7 the edit. **Save LoRA Weights** keeps the "
        "fine-tune (LoraLoader applies it again).\n\n"
        f"Steps here are few so that it runs in about a minute on a CPU: {s['embedding']} embedding steps at lr "
        f"{s['embedding_lr']:g} and {s['fine_tune']} LoRA steps at lr {s['fine_tune_lr']:g} (the toy model is tiny). "
        "The paper: 100 embedding steps (lr 0.001) and 1500 fine-tuning steps (lr 5e-7, all weights); diffusers' "
        "reference code for Stable Diffusion: 500 (lr 0.001) and 1000 (lr 2e-6); the nodes' defaults for a real "
        "checkpoint: 500 and 1000 LoRA steps (lr 0.0005). Each step is one UNet forward and backward pass.\n\n"
        "This workflow runs on the one-object world: Imagic draws the result from noise, and on the two-object world "
        "a fine-tune this short does not bring both objects back to their places.\n\n" + toy_note(world))
    nodes = [n for n in inversion_nodes(intro, world) if n["key"] not in ("invert", "apply", "prompt")] + [
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": w["target"]},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt (the edit)"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "optimize", "type": "InvertEditImagicOptimizeEmbedding",
         "widgets": {"steps": s["embedding"], "learning_rate": s["embedding_lr"], "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "target": ("target", 0)}},
        {"key": "fine_tune", "type": "InvertEditImagicFineTune",
         "widgets": {"steps": s["fine_tune"], "learning_rate": s["fine_tune_lr"], "rank": s["rank"], "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "optimized": ("optimize", 0)}},
        {"key": "save_lora", "type": "SaveLoRANode", "widgets": {"prefix": "loras/imagic_toy"},
         "inputs": {"lora": ("fine_tune", 1)}},
        {"key": "noise_latent", "type": "EmptyLatentImage",
         "widgets": {"width": w["size"], "height": w["size"], "batch_size": 1},
         "title": f"Empty latent (the toy world's {w['size']} px)"},
    ]
    for key, alpha, title in (("rec", 0.0, "Imagic reconstruction (alpha 0)"), ("edit", 0.7, "Imagic edit (alpha 0.7)")):
        nodes += [
            {"key": f"mix_{key}", "type": "InvertEditImagicInterpolate", "widgets": {"alpha": alpha},
             "inputs": {"target": ("optimize", 1), "optimized": ("optimize", 0)}},
            {"key": f"sample_{key}", "type": "KSampler",
             "widgets": {"seed": 0, "steps": 25, "cfg": EDIT_CFG, "sampler_name": "ddim",
                         "scheduler": "ddim_uniform", "denoise": 1.0},
             "inputs": {"model": ("fine_tune", "MODEL"), "positive": (f"mix_{key}", 0), "negative": ("empty", 0),
                        "latent_image": ("noise_latent", "LATENT")}},
        ]
        nodes += decode_and_save(key, f"sample_{key}", f"invertedit/imagic_{key}", title)
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - Imagic edit": imagic_edit}
# the Save Image each workflow keeps (its result; make_workflows previews the other pictures)
RESULTS = {'Toy - Imagic edit': 'save_edit'}
