"""Prompt-to-Prompt on joint attention's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, QWEN, QWEN_CFG, QWEN_SHIFT, Family, PHOTO_SOURCE, PHOTO_TARGET, PHOTO_WORD, SCHEDULES, SD3,
                                     TOY_FLOW, clip_of, flow_front, flow_model, setup_note, strip, vae_of)
from ...workflows.toy import SOURCE_NOUN, TARGET_NOUN


def _joint_p2p_edit(family: Family, steps: int, guidance: float) -> dict:
    """Prompt-to-Prompt on joint attention (Joint Attention Inject) on a Flow Invert inversion (euler), the paper's
    fractions (cross 0.8, self 0.4) and local blend (threshold 0.3, start 0.2) on the edited word."""
    flux = family is FLUX
    scale = "guidance" if flux else "cfg"
    sampled = (f"; **ModelSamplingAuraFlow** at shift {QWEN_SHIFT:g} as ComfyUI's Qwen-Image examples sample, "
               "CFGGuider with the empty negative" if family is QWEN else "")
    intro = (
        f"# {family.name}: Prompt-to-Prompt on joint attention, an edit that keeps the rest of the image\n\n"
        + setup_note(family, "**Source prompt**: a caption of your image; **Target prompt**: that caption with one "
                              "word swapped (the edit); both feed Joint Attention Inject too. Its *blend* words: the "
                              "edited object (left empty: the words that differ; *local_blend* off: a global "
                              "edit).") +
        f"\n**Flow Invert** inverts your image with Euler ({steps} steps). **Joint Attention Inject** patches the "
        f"model so that the source and the edit sample as one pair, the source row following the inversion: in every "
        f"block, the edit's image tokens take the source's attention on the prompt's words (Prompt-to-Prompt, Hertz "
        f"et al., on {family.name}'s joint attention: replace 0.8 of the steps) and, in the first 0.4, on the image; "
        f"with the local blend, outside the words' attention the edit follows the source, so the background is "
        f"your image. Sampled by the stock **SamplerCustomAdvanced** (euler{sampled}) with the node's NOISE, the inversion's "
        f"SIGMAS and the image's latent repeated twice (**Repeat Latent Batch**), {scale} {guidance:g}; **Latent "
        f"From Batch** takes the edit (row 1). The strip: the image and the edit.")
    model = flow_model(family)
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFlowInvert",
         "widgets": {"solver": "euler", "steps": steps, "scheduler": SCHEDULES[family.name], "guidance": 1.0,
                     "share_steps": 0, "share_from_block": 20, "keep_values_on": "device", "keep_keys_values": False},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "joint", "type": "InvertEditJointAttentionInject",
         "widgets": {"source_prompt": PHOTO_SOURCE, "target_prompt": PHOTO_TARGET, "mode": "replace", "reweight": "",
                     "cross_replace": 0.8, "self_replace": 0.4, "blocks": "all", "guidance": guidance if flux else 3.5,
                     "cross_replace_words": "", "blend_source_words": PHOTO_WORD, "blend_target_words": PHOTO_WORD,
                     "blend_threshold": 0.3, "blend_start": 0.2, "seed": 0},
         "inputs": {"model": model, "clip": clip_of(family), "inversion": ("invert", 0)}},
        {"key": "guider", "type": "BasicGuider", "inputs": {"model": ("joint", "MODEL"),
                                                            "conditioning": ("joint", "CONDITIONING")}}
        if flux else
        {"key": "guider", "type": "CFGGuider", "widgets": {"cfg": guidance},
         "inputs": {"model": ("joint", "MODEL"), "positive": ("joint", "CONDITIONING"), "negative": ("empty", 0)}},
        {"key": "pair_latent", "type": "RepeatLatentBatch", "widgets": {"amount": 2},
         "inputs": {"samples": ("encode", "LATENT")}, "title": "Repeat Latent Batch (the pair)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("joint", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("pair_latent", "LATENT")}},
        {"key": "pick", "type": "LatentFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"samples": ("sample", 0)}, "title": "Latent From Batch (the edit)"},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("pick", 0), "vae": vae_of(family)}},
    ]
    nodes += strip([("resize", "image"), ("decode", "edit")], f"invertedit/{family.name.lower().replace('-', '_')}_joint_p2p",
                   "Image | Prompt-to-Prompt")
    return {"nodes": nodes}


def flux_joint_p2p_edit() -> dict:
    return _joint_p2p_edit(FLUX, steps=28, guidance=3.5)   # the host's Flux guidance


def sd3_joint_p2p_edit() -> dict:
    return _joint_p2p_edit(SD3, steps=28, guidance=3.5)


def qwen_joint_p2p_edit() -> dict:
    return _joint_p2p_edit(QWEN, steps=28, guidance=QWEN_CFG)   # the diffusers pipeline's true cfg


WORKFLOWS = {"Flux - Prompt-to-Prompt edit": flux_joint_p2p_edit, "SD3 - Prompt-to-Prompt edit": sd3_joint_p2p_edit,
             "Qwen-Image - Prompt-to-Prompt edit": qwen_joint_p2p_edit}
CHECKPOINT = {
    "Flux - Prompt-to-Prompt edit": (dict(TOY_FLOW, InvertEditJointAttentionInject={   # its prompts: linked
        "blend_source_words": SOURCE_NOUN, "blend_target_words": TARGET_NOUN}), {}),
    "SD3 - Prompt-to-Prompt edit": ({}, {"InvertEditFlowInvert": {"steps": 6}}),
    # on the Demo Model's tiny random Qwen-Image, with the toy world's prompts, at the template's own settings
    # (under a second on a CPU core)
    "Qwen-Image - Prompt-to-Prompt edit": (dict(TOY_FLOW, InvertEditJointAttentionInject={
        "blend_source_words": SOURCE_NOUN, "blend_target_words": TARGET_NOUN}), {}),
}
