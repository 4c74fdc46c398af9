"""KV-Edit's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (FLUX, PHOTO_SOURCE, PHOTO_WORD, PROMPTS_PLAIN, QWEN, QWEN_CFG, QWEN_SHIFT, SCHEDULES, TOY_FLOW,
                                     TOY_FLOW_MAPS, Family, clip_of, flow_front, flow_model, flow_sample, setup_note, strip)


PAINT_NOTE = ("5. **Paint the region to remake**: right click the image in **Load Image** > **Open in MaskEditor**, "
              "paint over it and save; Load Image's MASK is KV-Edit's mask (nothing painted: KV-Edit says so).\n\n"
              "**Flow Invert** (Euler, 28 steps, guidance 1.5) keeps every block's keys and values: about 2.7 GB per "
              "step per megapixel in bfloat16, 73 GB for this 1 MP run, in system memory with keep_values_on cpu (the "
              "authors' offload); fp8 halves it, a 512 px image quarters it. **KV-Edit** remakes only the painted "
              "region against that background, 4 steps down the schedule (SamplerCustomAdvanced, euler, target "
              "prompt at guidance 5.5): outside the mask the edit is your image. The pictures: the mask, the edit.")
# the note's line on how to run it (the canvas shows it; the full text is on the template's docs page)
PAINT_HOW = ("**To run it**: choose your model (**Load Checkpoint**) and picture (**Load Image**), paint the region "
             "to remake (right click it > Open in MaskEditor), write the prompts. At 1 MP its cache takes "
             "about 73 GB: start at 512 px.")
PAINTED_TITLE = "Load Image (your image: paint the region to remake)"

# Qwen-Image: the same edit on its 60 joint blocks (3072 wide keys and values over the text and the image's tokens:
# about 2.8 GB per step per megapixel in bfloat16, 79 GB for 28 steps at 1 MP), inverted without guidance (it has
# none distilled: Flow Invert's guidance is Flux's) and edited with true cfg (CFGGuider, the empty negative)
QWEN_PAINT_NOTE = ("5. **Paint the region to remake**: right click the image in **Load Image** > **Open in MaskEditor**, "
                   "paint over it and save; Load Image's MASK is KV-Edit's mask (nothing painted: KV-Edit says so).\n\n"
                   "**Flow Invert** (Euler, 28 steps, without guidance: Qwen-Image has none distilled) keeps every "
                   "joint block's keys and values: about 2.8 GB per step per megapixel in bfloat16 (60 blocks), 79 GB "
                   "for this 1 MP run, in system memory with keep_values_on cpu (the authors' offload); fp8 halves it, "
                   "a 512 px image quarters it. **KV-Edit** (Zhu et al.; the authors' settings on Flux: 4 steps "
                   "skipped, attn_scale 1) remakes only the painted region against that background, 4 steps down the "
                   f"schedule (SamplerCustomAdvanced, euler; **ModelSamplingAuraFlow** at shift {QWEN_SHIFT:g} as "
                   f"ComfyUI's Qwen-Image examples sample; target prompt at true cfg {QWEN_CFG:g} with the empty "
                   "negative): outside the mask the edit is your image. The pictures: the mask, the edit.")
QWEN_PAINT_HOW = ("**To run it**: choose your model's files (**Load Diffusion Model**, **Load CLIP**, **Load VAE**), "
                  "your picture, paint the region (right click > Open in MaskEditor), write the prompts. At 1 MP "
                  "its cache takes 79 GB: try 512 px.")


WORD_MASK_NOTE = ("\n**Mask**: the region to remake, from a word: **Attention Store** evaluates the source prompt on "
                  "the same inversion and gives the region its *words* are attended in (here 'dress') as a MASK, "
                  "grown by one cell of the maps (mask_pool 3, Prompt-to-Prompt's local blend) so that the new "
                  "object has room; mask_pool 1 keeps the word's own region. Check the mask in the strip; paint "
                  "one instead where it misses.\n\n")


def qwen_kv_edit() -> dict:
    """KV-Edit on Qwen-Image with the authors' settings where they carry over (28 Euler steps, 4 skipped, attn_scale
    1); the inversion without guidance and the edit at Qwen-Image's true cfg (``QWEN_CFG``, the empty negative);
    the mask painted in Load Image's mask editor."""
    intro = "# Qwen-Image: KV-Edit, an edit that keeps the background as it is\n\n" + setup_note(QWEN, PROMPTS_PLAIN) \
        + QWEN_PAINT_NOTE
    return _kv_edit_graph(QWEN, intro, word=False, invert_guidance=1.0, edit_guidance=QWEN_CFG,
                          prefix="invertedit/qwen_image_kv_edit", how=QWEN_PAINT_HOW)


def _flux_kv_edit(word: bool) -> dict:
    """KV-Edit with the authors' settings (``Xilluill/KV-Edit``'s demo: 28 steps, 4 skipped, guidance 1.5 inverting
    and 5.5 editing, attn_scale 1); the mask painted in Load Image's mask editor (its MASK: issue 79) or, with
    ``word``, the word's region that Attention Store reads on the same inversion (issue 27: the mask from the
    user or from the word maps)."""
    heading = "# Flux: KV-Edit, an edit that keeps the background as it is\n\n"
    intro = heading + setup_note(FLUX, PROMPTS_PLAIN) + PAINT_NOTE if not word else (
        heading + setup_note(FLUX, PROMPTS_PLAIN) + WORD_MASK_NOTE +
        "**Flow Invert** inverts your image with Euler (28 steps, guidance 1.5) and, with keep_keys_values on, keeps "
        "every block's keys and values at every step (KV-Edit, Zhu et al.; about 2.7 GB per step per megapixel in "
        "bfloat16: about 73 GB for this 1 MP run of 28 steps, kept on the GPU or, with keep_values_on cpu as the "
        "authors' code does, in system memory; 'device, fp8' or 'cpu, fp8' halves it, a 512 px image quarters it, "
        "and the node refuses before the run what does not fit). **KV-Edit** patches the model so "
        "that only the masked tokens are made anew: in every block they attend to the background's kept keys and "
        "values (attn_scale 1 raises the background's weight), and the background's latent is the image's, so "
        "outside the mask the edit is your image. Its NOISE and SIGMAS start the stock **SamplerCustomAdvanced** "
        "(euler) 4 steps down the schedule; target prompt at guidance 5.5. More skip_steps keep more of the masked "
        "region's layout; re_init starts it from fresh noise. The strip: the image, the mask, the edit.")
    return _kv_edit_graph(FLUX, intro, word, invert_guidance=1.5, edit_guidance=5.5,
                          prefix="invertedit/flux_kv_edit" + ("_word" if word else ""), how="" if word else PAINT_HOW)


def _kv_edit_graph(family: Family, intro: str, word: bool, invert_guidance: float, edit_guidance: float, prefix: str,
                   how: str) -> dict:
    """KV-Edit's graph on ``family``: Flow Invert keeping every block's keys and values, KV-Edit with the mask
    (Load Image's painted one, or with ``word`` Attention Store's of the edited word), the edit sampled at
    ``edit_guidance`` (Flux's distilled guidance, or cfg with the empty negative)."""
    model = flow_model(family)
    if word:
        mask = ("store", "MASK")
        masking = [{"key": "store", "type": "InvertEditAttentionStore",
                    "widgets": {"prompt": PHOTO_SOURCE, "words": PHOTO_WORD, "start": 0.0, "end": 1.0, "threshold": 0.3,
                                "dit_blocks": "all", "mask_pool": 3},
                    "inputs": {"model": model, "clip": clip_of(family), "inversion": ("invert", 0),
                               "image": ("resize", "IMAGE")},
                    "title": f"Attention Store (the mask of '{PHOTO_WORD}')"}]
    else:
        mask = ("image", "MASK")   # what Load Image's mask editor paints (1 - alpha); KV-Edit scales it to the latent
        masking = []
    nodes = flow_front(family, intro) + masking + [
        {"key": "invert", "type": "InvertEditFlowInvert",
         "widgets": {"solver": "euler", "steps": 28, "scheduler": SCHEDULES[family.name], "guidance": invert_guidance,
                     "share_steps": 0, "share_from_block": 20, "keep_values_on": "cpu", "keep_keys_values": True},
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "kv", "type": "InvertEditKVEdit",
         "widgets": {"skip_steps": 4, "attn_scale": 1.0, "re_init": False, "seed": 0},
         "inputs": {"model": model, "inversion": ("invert", 0), "mask": mask}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": mask}, "title": "The mask"},
    ]
    if not word:   # Load Image's title says where the mask is made
        next(n for n in nodes if n["key"] == "image")["title"] = PAINTED_TITLE
    scale = "guidance" if family is FLUX else "cfg"
    nodes += flow_sample(family, "edit", ("kv", "MODEL"), ("target", 0), edit_guidance, ("kv", "NOISE"), ("kv", "SIGMAS"),
                         ("sampler", "SAMPLER"), f"Edit (target prompt, {scale} {edit_guidance:g})")
    nodes += strip([("resize", "image"), ("mask_image", "mask"), ("edit_decode", "edit")], prefix, "Image | mask | KV-Edit")
    return {"nodes": nodes, "how": how}


def flux_kv_edit() -> dict:
    return _flux_kv_edit(word=False)


def flux_kv_edit_word() -> dict:
    return _flux_kv_edit(word=True)


def flux_kv_edit_one_node() -> dict:
    """Flux KV-Edit with its inversion, edit and decoding in one subgraph node (issue 79): on the canvas the
    model, the image, the prompts, the mask, the node and the results."""
    return dict(flux_kv_edit(), subgraph={
        "name": "KV-Edit",
        "description": (
            "# KV-Edit, inside\n\n"
            "**VAE Encode** of your image, **ModelSamplingFlux** at the image's size, **Flow Invert** (Euler, the "
            "source prompt, keeping every block's keys and values), **KV-Edit** (only the masked region is made "
            "anew), **FluxGuidance**, **BasicGuider**, **KSamplerSelect** (euler) and the stock "
            "**SamplerCustomAdvanced** from KV-Edit's NOISE and SIGMAS, then **VAE Decode**; the edit goes out. "
            "The mask comes in from outside (the one painted in Load Image's mask editor, or any MASK).\n\n"
            "The settings changed most are on the node outside (skip_steps, attn_scale, the edit's guidance, the "
            "inversion's steps); the others are here. Back to the workflow: the breadcrumb above."),
        "promote": [("kv", "skip_steps"), ("kv", "attn_scale"), ("edit_guidance", "guidance"), ("invert", "steps")],
        "labels": {"pixels": "image", "positive": "source", "conditioning": "target", "IMAGE": "edit"}})


WORKFLOWS = {"Flux - KV-Edit": flux_kv_edit, "Flux - KV-Edit from a word": flux_kv_edit_word,
             "Flux - KV-Edit (one node)": flux_kv_edit_one_node, "Qwen-Image - KV-Edit": qwen_kv_edit}
CHECKPOINT = {
    # the mask painted on the sample: a box over the red circle (centre 75, 85, radius 48 at 256 px; the runner's
    # paint_mask: Load Image loads the sample with that box painted, as its mask editor saves it)
    "Flux - KV-Edit": (dict(TOY_FLOW, LoadImage={"paint_mask": [20, 30, 112, 112]}), {}),
    "Flux - KV-Edit from a word": (dict(TOY_FLOW, **TOY_FLOW_MAPS), {}),
}
CHECKPOINT["Flux - KV-Edit (one node)"] = CHECKPOINT["Flux - KV-Edit"]
# on the Demo Model's tiny random Qwen-Image (the one-object sample, 128 px): a box in the middle painted, the toy
# world's prompts, the template's own settings (under a second on a CPU core)
CHECKPOINT["Qwen-Image - KV-Edit"] = (dict(TOY_FLOW, LoadImage={"paint_mask": [32, 32, 64, 64]}), {})
