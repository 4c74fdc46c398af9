"""The parts of the example workflows for the user's own checkpoint (SD1.5, SDXL, Flux.1, SD3) or model files
(Qwen-Image): the families' files and sizes, the notes, the front (Load Checkpoint, or Load Diffusion Model,
Load CLIP and Load VAE; the image at the family's size, the prompts), the flow families' sampling and strips,
and the toy overrides that run them on the built-in models in the tests and for the cards. Plain data."""
from __future__ import annotations

from dataclasses import dataclass
from ..workflows.toy import SOURCE_NOUN, SOURCE_PROMPT, STEPS, TARGET_NOUN, TARGET_PROMPT


# ----------------------------------------------------------------------------- on the user's checkpoint
# Workflows a user runs on their own model: the stock Load Checkpoint + Load Image + Upscale Image
# (ImageScale) + VAE Encode, with the settings of one checkpoint family. Load Image names the
# drawing every ComfyUI install ships in input/ (example.png), so each one queues as it is once the
# checkpoint is chosen. The tests and the card pictures run them with the checkpoint swapped for
# the Toy World Model (the runner's builtin, TOY_BUILTIN) and the toy-world prompts of TOY_RUNS below.

PHOTO = "example.png"      # ComfyUI's own input/example.png: a drawing of a girl in a pink dress


PHOTO_SOURCE = "a drawing of a girl in a pink dress"


PHOTO_TARGET = "a drawing of a girl in a blue dress"   # one word swapped: Prompt-to-Prompt's replace


PHOTO_WORD = "dress"       # local blend: where the edit may change the image


PHOTO_CONCEPT = "sunglasses"


@dataclass(frozen=True)
class Family:
    name: str       # as users say it
    ckpt: str       # the usual file name of the base model (the user picks theirs)
    size: int       # the image side the family was trained at
    detail: str     # one line for the notes
    loaders: str = ""   # how to load the model from separate files instead, for the notes
    # A family shipped as separate files only (Qwen-Image: no single checkpoint), loaded as ComfyUI's own
    # example workflows load it: Load Diffusion Model (``unet``), Load CLIP (``clip`` of type ``clip_type``),
    # Load VAE (``vae``); ``ckpt`` is then empty
    unet: str = ""
    clip: str = ""
    clip_type: str = ""
    vae: str = ""
    # a second text encoder (Flux.1 Kontext: clip_l and t5xxl): DualCLIPLoader (``clip`` and ``clip2``) in Load
    # CLIP's place
    clip2: str = ""

    @property
    def separate(self) -> bool:
        """Loaded from separate files (Load Diffusion Model, Load CLIP, Load VAE), not a checkpoint."""
        return bool(self.unet)


SD15 = Family("SD1.5", "v1-5-pruned-emaonly-fp16.safetensors", 512,
              "SD1.5 or any SD1.x fine-tune, e.g. DreamShaper")


SDXL = Family("SDXL", "sd_xl_base_1.0.safetensors", 1024,
              "SDXL base or an SDXL fine-tune, not the refiner")


FLUX = Family("Flux", "flux1-dev-fp8.safetensors", 1024,
              "Flux.1 dev as one checkpoint with its text encoders and VAE, e.g. ComfyUI's flux1-dev-fp8; schnell "
              "works too",
              "**Load Diffusion Model** (flux1-dev), **DualCLIPLoader** (clip_l and t5xxl, type flux) and **Load VAE** "
              "(ae)")


SD3 = Family("SD3", "sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors", 1024,
             "SD3 medium or SD3.5 as one checkpoint with its text encoders and VAE",
             "**Load Diffusion Model**, **TripleCLIPLoader** (clip_l, clip_g, t5xxl) and **Load VAE**")


# Qwen-Image (Alibaba, 2025: a 20 B MMDiT on Qwen2.5-VL 7B's text, a Wan 2.1 VAE) as ComfyUI's own Qwen-Image
# example workflows load it (the template browser's "Qwen-Image", Comfy-Org/Qwen-Image_ComfyUI's files). Its size:
# 1 MP as the other flow families' templates (the model's base is 1328 x 1328, 1.68 MP: the note says so; KV-Edit's
# cache grows with the pixels)
QWEN = Family("Qwen-Image", "", 1024,
              "ComfyUI's Qwen-Image files, Comfy-Org/Qwen-Image_ComfyUI: the diffusion model in fp8 or bf16, the "
              "Qwen2.5-VL 7B text encoder, the VAE",
              unet="qwen_image_fp8_e4m3fn.safetensors", clip="qwen_2.5_vl_7b_fp8_scaled.safetensors",
              clip_type="qwen_image", vae="qwen_image_vae.safetensors")
QWEN_BASE = 1328        # Qwen-Image's base image side (its 1:1 size; ComfyUI's example draws 1328 x 1328)
# ModelSamplingAuraFlow's shift in ComfyUI's Qwen-Image examples (the host's default without the node: 1.15; the
# diffusers pipeline's dynamic shift: exp(mu), 2.3 at 1328 x 1328 and 2.0 at 1 MP). The templates take the
# examples' 3.1, the graph Qwen-Image users run: the same schedule a user's own Qwen-Image workflow samples with
QWEN_SHIFT = 3.1
QWEN_CFG = 4.0          # the diffusers pipeline's true_cfg_scale (Qwen-Image has no distilled guidance: CFGGuider)


# The instruction editors (issue 81), as ComfyUI's own templates load them: Flux.1 Kontext dev (the template browser's
# "Flux Kontext Dev (Basic)": Load Diffusion Model, DualCLIPLoader of clip_l and t5xxl, type flux, Load VAE of ae) and
# Qwen-Image-Edit (its "Qwen Image Edit": Qwen-Image's text encoder and VAE). Their size: the image's own (an
# instruction editor takes any size; rescaling is what shifts and crops the picture), so ``size`` is the 1 MP the
# notes reckon the memory at
KONTEXT = Family("Kontext", "", 1024,
                 "Flux.1 Kontext dev as ComfyUI's Kontext template loads it, Comfy-Org/flux1-kontext-dev_ComfyUI: the "
                 "diffusion model in fp8 or bf16, clip_l and t5xxl, the Flux VAE",
                 unet="flux1-dev-kontext_fp8_scaled.safetensors", clip="clip_l.safetensors",
                 clip2="t5xxl_fp8_e4m3fn_scaled.safetensors", clip_type="flux", vae="ae.safetensors")
QWEN_EDIT = Family("Qwen-Image-Edit", "", 1024,
                   "ComfyUI's Qwen-Image-Edit files, Comfy-Org/Qwen-Image-Edit_ComfyUI (the diffusion model in fp8 or "
                   "bf16) with Qwen-Image's Qwen2.5-VL 7B text encoder and VAE",
                   unet="qwen_image_edit_fp8_e4m3fn.safetensors", clip=QWEN.clip, clip_type="qwen_image", vae=QWEN.vae)
KONTEXT_GUIDANCE = 2.5   # FluxGuidance in ComfyUI's Kontext template (and the diffusers pipeline's guidance_scale)

FAMILIES = (SD15, SDXL, FLUX, SD3, QWEN, KONTEXT, QWEN_EDIT)


PROMPTS_PLAIN = ("**Source prompt**: describe your image as it is. **Target prompt**: the same words with the "
                 "edit.")


PROMPTS_P2P = ("**Source prompt**: a caption of your image (it feeds Attention Inject's *source_prompt* too). "
               "Attention Inject's *target_prompt*: that caption with one word swapped for another (the edit). Its "
               "*blend* words, left empty, are the words that differ between the two; type others to choose the "
               "region, or turn *local_blend* off for a global edit.")


def megapixels(family: Family) -> float:
    """The family's picture size in megapixels (ImageScaleToTotalPixels' unit: 1024 x 1024 pixels)."""
    return family.size ** 2 / 1024 ** 2


def clip_of(family: Family) -> tuple[str, str]:
    """The node output that gives ``family``'s CLIP: Load Checkpoint's, or Load CLIP's (separate files)."""
    return ("clip", "CLIP") if family.separate else ("model", "CLIP")


def vae_of(family: Family) -> tuple[str, str]:
    """The node output that gives ``family``'s VAE: Load Checkpoint's, or Load VAE's (separate files)."""
    return ("vae", "VAE") if family.separate else ("model", "VAE")


def _load_step(family: Family) -> str:
    if family.separate:
        return (f"1. **Load Diffusion Model**: choose your {family.name} model (`{family.unet}`, or the bf16 one); "
                f"**Load CLIP**: its text encoder (`{family.clip}`, type {family.clip_type}); **Load VAE**: "
                f"`{family.vae}`. They go in ComfyUI's models/diffusion_models, text_encoders and vae folders.\n")
    return (f"1. **Load Checkpoint**: choose your {family.name} checkpoint"
            + (f" (with separate files, replace it by {family.loaders}: their MODEL, CLIP and VAE go where "
               f"its outputs went).\n" if family.loaders else ".\n"))


def setup_note(family: Family, prompts: str) -> str:
    size = (f"({megapixels(family):g} megapixels, as the other flow models' templates; {family.name}'s base is "
            f"{QWEN_BASE}x{QWEN_BASE}, {QWEN_BASE ** 2 / 1024 ** 2:.2f} megapixels: set that for its own size)"
            if family is QWEN else f"({megapixels(family):g} megapixels, {family.name}'s size)")
    return (
        f"**To run it on your model** ({family.name}: {family.detail}):\n\n"
        + _load_step(family) +
        f"2. **Load Image**: choose or upload your image (the workflow opens with ComfyUI's own `example.png`).\n"
        f"3. **Scale Image to Total Pixels** brings it to about {family.size}x{family.size} pixels in all "
        f"{size}, keeping its shape.\n"
        f"4. {prompts}\n")


def model_loaders(family: Family) -> list[dict]:
    """Load Checkpoint (node ``model``), or for a family of separate files Load Diffusion Model (``model``), Load
    CLIP (``clip``) and Load VAE (``vae``) as ComfyUI's own examples of the family load them."""
    if not family.separate:
        return [{"key": "model", "type": "CheckpointLoaderSimple", "widgets": {"ckpt_name": family.ckpt},
                 "title": f"Load Checkpoint ({family.name})"}]
    clip = ({"key": "clip", "type": "DualCLIPLoader",
             "widgets": {"clip_name1": family.clip, "clip_name2": family.clip2, "type": family.clip_type,
                         "device": "default"},
             "title": f"DualCLIPLoader ({family.name}'s text encoders)"} if family.clip2 else
            {"key": "clip", "type": "CLIPLoader", "widgets": {"clip_name": family.clip, "type": family.clip_type,
                                                              "device": "default"},
             "title": f"Load CLIP ({family.name}'s text encoder)"})
    return [
        {"key": "model", "type": "UNETLoader", "widgets": {"unet_name": family.unet, "weight_dtype": "default"},
         "title": f"Load Diffusion Model ({family.name})"},
        clip,
        {"key": "vae", "type": "VAELoader", "widgets": {"vae_name": family.vae}, "title": f"Load VAE ({family.name})"},
    ]


def _image_front(family: Family, intro: str) -> list[dict]:
    """The note, the model's loader(s), and Load Image brought to the family's size (node ``resize``)."""
    return [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        *model_loaders(family),
        {"key": "image", "type": "LoadImage", "widgets": {"image": PHOTO}, "title": "Load Image (your image)"},
        {"key": "resize", "type": "ImageScaleToTotalPixels",
         "widgets": {"upscale_method": "lanczos", "megapixels": megapixels(family)},
         "inputs": {"image": ("image", "IMAGE")}, "title": f"Scale Image ({family.name}: {megapixels(family):g} MP, its shape kept)"},
    ]


def checkpoint_front(family: Family, intro: str, *, invert: bool = True) -> list[dict]:
    """Checkpoint, image at the family's size, source prompt, VAE Encode (and DDIM Invert, cfg 1)."""
    nodes = _image_front(family, intro) + [
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_SOURCE},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Source prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("resize", "IMAGE"), "vae": ("model", "VAE")}},
    ]
    if invert:
        nodes.append(
            {"key": "invert", "type": "InvertEditDDIMInvert",
             "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
             "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}})
    return nodes


def p2p_inject() -> dict:
    """Attention Inject with PIE-Bench's Prompt-to-Prompt settings and local blend on the edited word."""
    return {"key": "inject", "type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": PHOTO_SOURCE, "target_prompt": PHOTO_TARGET, "mode": "replace", "reweight": "",
                        "cross_replace": 0.4, "self_replace": 0.6, "blend_source_words": PHOTO_WORD,
                        "blend_target_words": PHOTO_WORD, "blend_threshold": 0.3, "blend_start": 0.2},
            "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")}}


P2P_SETTINGS = ("**Attention Inject** (Prompt-to-Prompt, replace) with PIE-Bench's settings: cross-attention "
                "injected for 0.4 of the steps, self-attention for 0.6, local blend on "
                f"'{PHOTO_WORD}' (threshold 0.3, from 0.2 of the steps: outside the word's attention the image stays "
                "the source's).")


# Running a checkpoint workflow on the Toy World Model (tests, card pictures): the runner's
# builtin (TOY_BUILTIN) swaps the loader, the image (the bundled sample) and the Upscale Image size;
# these overrides give it the toy world's prompts, which is all the toy model knows.
# The host's scheduler that gives the authors' schedule (diffusers' FlowMatchEulerDiscreteScheduler as
# their pipelines set it; tests/host/test_flow_edit.py compares them): SD3's "normal" is it exactly; Flux's
# "simple" (after ModelSamplingFlux at the image's size) is it where the steps divide 1000, else within
# 1/1000 of the schedule's time.
# Qwen-Image's "simple" after ModelSamplingAuraFlow: ComfyUI's Qwen-Image examples' (KSampler, euler, simple).
SCHEDULES = {"Flux": "simple", "SD3": "normal", "Qwen-Image": "simple", "Kontext": "simple", "Qwen-Image-Edit": "simple"}


def flow_front(family: Family, intro: str, source: bool = True) -> list[dict]:
    """The model's loader(s), the image at the family's size and its latent, the prompts (source, target and,
    for SD3 and Qwen-Image, the empty negative), and the model's shift (node ``shift``): for Flux
    ModelSamplingFlux at the image's size, for Qwen-Image ModelSamplingAuraFlow at ``QWEN_SHIFT``."""
    clip = clip_of(family)
    nodes = _image_front(family, intro) + [
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("resize", "IMAGE"), "vae": vae_of(family)}},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_TARGET},
         "inputs": {"clip": clip}, "title": "Target prompt"},
    ]
    if source:
        nodes.append({"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_SOURCE},
                      "inputs": {"clip": clip}, "title": "Source prompt"})
    if family is FLUX:
        nodes += [{"key": "image_size", "type": "GetImageSize", "inputs": {"image": ("resize", "IMAGE")}},
                  {"key": "shift", "type": "ModelSamplingFlux", "widgets": {"max_shift": 1.15, "base_shift": 0.5},
                   "inputs": {"model": ("model", "MODEL"), "width": ("image_size", "width"),
                              "height": ("image_size", "height")}, "title": "ModelSamplingFlux (the image's size)"}]
    else:
        if family is QWEN:
            nodes.append({"key": "shift", "type": "ModelSamplingAuraFlow", "widgets": {"shift": QWEN_SHIFT},
                          "inputs": {"model": ("model", "MODEL")},
                          "title": "ModelSamplingAuraFlow (Qwen-Image's shift)"})
        nodes.append({"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""},
                      "inputs": {"clip": clip}, "title": "Negative prompt (empty)"})
    return nodes


def flow_model(family: Family) -> tuple:
    """The MODEL the flow nodes take: after the family's shift node where the front adds one (Flux, Qwen-Image)."""
    return ("shift", "MODEL") if family in (FLUX, QWEN) else ("model", "MODEL")


def flow_sample(family: Family, key: str, model: tuple, conditioning: tuple, guidance: float, noise: tuple,
                sigmas: tuple, sampler: tuple, title: str) -> list[dict]:
    """SamplerCustomAdvanced of ``conditioning`` from ``noise`` with the image's latent, then VAE Decode:
    Flux with FluxGuidance ``guidance`` and BasicGuider, SD3 and Qwen-Image with CFGGuider at cfg ``guidance``
    and the empty negative."""
    if family is FLUX:
        nodes = [{"key": f"{key}_guidance", "type": "FluxGuidance", "widgets": {"guidance": guidance},
                  "inputs": {"conditioning": conditioning}},
                 {"key": f"{key}_guider", "type": "BasicGuider",
                  "inputs": {"model": model, "conditioning": (f"{key}_guidance", 0)}}]
    else:
        nodes = [{"key": f"{key}_guider", "type": "CFGGuider", "widgets": {"cfg": guidance},
                  "inputs": {"model": model, "positive": conditioning, "negative": ("empty", 0)}}]
    return nodes + [
        {"key": key, "type": "SamplerCustomAdvanced", "title": title,
         "inputs": {"noise": noise, "guider": (f"{key}_guider", "GUIDER"), "sampler": sampler, "sigmas": sigmas,
                    "latent_image": ("encode", "LATENT")}},
        {"key": f"{key}_decode", "type": "VAEDecode", "inputs": {"samples": (key, 0), "vae": vae_of(family)}},
    ]


def strip(panels: list[tuple[str, str]], prefix: str, title: str = "") -> list[dict]:
    """The result and what to compare it with: ``panels`` are (node key, name) in reading order, the
    first the image (shown by Load Image already), the last the result, saved (``prefix``), those
    between previewed. Each picture's node is titled with its name (the card's labels)."""
    nodes = []
    for i, (key, name) in enumerate(panels[1:-1], 1):
        nodes.append({"key": f"show_{i}", "type": "PreviewImage", "inputs": {"images": (key, "IMAGE")},
                      "title": name[:1].upper() + name[1:]})
    key, name = panels[-1]
    nodes.append({"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": prefix},
                  "inputs": {"images": (key, "IMAGE")}, "title": name[:1].upper() + name[1:]})
    return nodes


def flow_inversion_edit(family: Family, edit_guidance: float, share: int = 0) -> dict:
    flux = family is FLUX
    scale = "guidance" if flux else "cfg"
    if share:
        intro = (
            f"# {family.name}: RF-Solver-Edit, an edit that keeps the rest\n\n"
            + setup_note(family, PROMPTS_PLAIN) +
            f"\n**Flow Invert** inverts your image with RF-Solver's second-order step (Wang et al.; 25 steps, guidance "
            f"1) and, with share_steps {share}, keeps the attention values of Flux's single blocks 20 to 37 for the "
            "first steps (the authors' code keeps 20 of 25; their examples 2 to 5; about 1 GB per step per megapixel; "
            "keep_values_on cpu offloads them, as theirs). **Share Values** patches the model so that in those steps the blocks attend with "
            "the source's values: the edit keeps the image's layout and details. Sampled by the stock "
            "**SamplerCustomAdvanced** with the **Flow Sampler** (rf-solver), the inversion's NOISE and SIGMAS and the "
            f"image's latent, target prompt at guidance {edit_guidance:g}. The strip: the image, the edit without "
            "sharing, the edit with it.")
    else:
        intro = (
            f"# {family.name}: inversion with RF-Solver, reconstruction and an edit\n\n"
            + setup_note(family, PROMPTS_PLAIN) +
            f"\n**Flow Invert** integrates the model's velocity from your image up to noise with RF-Solver's "
            f"second-order step (Wang et al.; 25 steps, {'guidance 1' if flux else 'no guidance'} as their code; `euler` "
            "and `fireflow` are the other solvers). Its NOISE starts the stock **SamplerCustomAdvanced** at the "
            "inversion, with the image's latent as latent_image, the **Flow Sampler** (the same solver) and its SIGMAS: "
            f"with the source prompt at {scale} 1 it reconstructs the image; with the target prompt at {scale} "
            f"{edit_guidance:g} it edits it. A plain prompt change redraws more than the edit; "
            f"{'the RF-Solver-Edit workflow shares the source' + chr(39) + 's attention values to keep the rest' if flux else 'FlowEdit keeps more of the rest'}. "
            "The strip: the image, the reconstruction, the edit.")
    model = flow_model(family)
    widgets = {"solver": "rf-solver", "steps": 25, "scheduler": SCHEDULES[family.name], "guidance": 1.0}
    if share:
        widgets.update(share_steps=share, share_from_block=20, keep_values_on="device")
    nodes = flow_front(family, intro) + [
        {"key": "invert", "type": "InvertEditFlowInvert", "widgets": widgets,
         "inputs": {"model": model, "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "solver", "type": "InvertEditFlowSampler", "widgets": {"solver": "rf-solver"}},
    ]
    if not share:
        nodes += flow_sample(family, "rec", model, ("prompt", 0), 1.0, ("invert", "NOISE"), ("invert", "SIGMAS"),
                             ("solver", "SAMPLER"), f"Reconstruction (source prompt, {scale} 1)")
    nodes += flow_sample(family, "edit", model, ("target", 0), edit_guidance, ("invert", "NOISE"), ("invert", "SIGMAS"),
                         ("solver", "SAMPLER"), f"Edit (target prompt, {scale} {edit_guidance:g})")
    if share:
        nodes.append({"key": "share", "type": "InvertEditShareValues",
                      "inputs": {"model": model, "inversion": ("invert", 0)}})
        nodes += flow_sample(family, "shared", ("share", "MODEL"), ("target", 0), edit_guidance, ("invert", "NOISE"),
                             ("invert", "SIGMAS"), ("solver", "SAMPLER"),
                             f"Edit with the source's values (guidance {edit_guidance:g})")
        return {"nodes": nodes + strip([("resize", "image"), ("edit_decode", "edit without sharing"), ("shared_decode", "edit")],
                                         "invertedit/flux_rf_solver_edit", "Image | edit | edit with shared values")}
    nodes += strip([("resize", "image"), ("rec_decode", "reconstruction"), ("edit_decode", "edit")],
                   f"invertedit/{family.name.lower()}_rf_solver", "Image | reconstruction | edit")
    return {"nodes": nodes}


# The checkpoint workflows' toy overrides (the runner's ``overrides``): the toy world's prompts in the
# nodes a user types them into, once (the String nodes "Source prompt" and "Target prompt" feed every node
# that takes them); a technique's own are in its workflows.py
TOY_PROMPTS = {"Source prompt": {"value": SOURCE_PROMPT}, "Target prompt": {"value": TARGET_PROMPT}}
TOY_P2P = {"Source prompt": {"value": SOURCE_PROMPT},
           "InvertEditAttentionInject": {"target_prompt": TARGET_PROMPT,
                                         "blend_source_words": SOURCE_NOUN, "blend_target_words": TARGET_NOUN}}
# The Flux workflows on the toy flow world (256 px; the same sample scene and edit as world 2's)
TOY_FLOW = TOY_PROMPTS
TOY_FLOW_MAPS = {"Source prompt": {"value": SOURCE_PROMPT},
                 "InvertEditAttentionStore": {"words": SOURCE_NOUN}}

# ... and with fewer steps, so the test suite stays quick (the sampler's steps match the inversion's);
# the Flux ones none: the toy flow model runs each at its full settings in seconds, and their pictures
# are checked at those
QUICK = 10
QUICK_DDIM = {"InvertEditDDIMInvert": {"steps": QUICK}, "KSamplerAdvanced": {"steps": QUICK}}


# ----------------------------------------------------------------------------- Wan 2.1 clips (issue 82)
#: Wan 2.1 text-to-video as ComfyUI's own Wan 2.1 examples load it (Comfy-Org/Wan_2.1_ComfyUI_repackaged): the
#: diffusion model, UMT5-XXL (Load CLIP, type wan), the Wan 2.1 VAE. Its clip: FiVE-Bench's, 41 frames at 832 x 480
#: (``WAN_SIZE``)
WAN = Family("Wan 2.1", "", 832, "Wan 2.1 text-to-video 1.3B or 14B (or Wan 2.2 A14B's low-noise expert), "
             "Comfy-Org/Wan_2.1_ComfyUI_repackaged's files",
             unet="wan2.1_t2v_1.3B_fp16.safetensors", clip="umt5_xxl_fp8_e4m3fn_scaled.safetensors", clip_type="wan",
             vae="wan_2.1_vae.safetensors")
WAN_SIZE = (832, 480)
#: Wan's default negative prompt (``sample_neg_prompt`` of Wan's configs, which FiVE's Wan-Edit uses)
WAN_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
                "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人"
                "很多，倒着走")
WAN_FPS = 16.0   # Wan 2.1's frame rate
WAN_TINY = ("On the pack's tests and card the model is the **Demo Model's tiny random Wan 2.1** (random weights: its "
            "frames are noise; it checks the mechanics, not the picture).")


def wan_setup_note(prompts: str) -> str:
    """How to set a Wan 2.1 clip template up: its files, the clip, its size, the prompts."""
    w, h = WAN_SIZE
    return (f"**To run it on your model** ({WAN.name}: {WAN.detail}):\n\n"
            f"1. **Load Diffusion Model**: your Wan 2.1 text-to-video model (`{WAN.unet}`, or the 14B); **Load CLIP**: "
            f"`{WAN.clip}`, type wan; **Load VAE**: `{WAN.vae}`. They go in ComfyUI's models/diffusion_models, "
            "text_encoders and vae folders.\n"
            "2. **Load Image**: your clip as an animated PNG or WebP (its frames load as one batch; the workflow opens "
            "with ComfyUI's own `example.png`, one frame). For a video file, replace it by **Load Video** then **Get "
            "Video Components** (its images). **Repeat Image Batch** (amount 1: nothing) makes a still image a clip to "
            "try it on (amount 9: 9 frames).\n"
            f"3. **Scale Image** brings the frames to {w * h / 1024 ** 2:.2f} megapixels, their shape kept (FiVE-Bench's "
            f"clips are {w}x{h}); keep 1 + 4k frames (41: FiVE's), "
            "as the Wan VAE folds 4 frames into one latent frame.\n"
            f"4. {prompts}\n")


def wan_clip_front(intro: str, shift: float, source: bool = True) -> list[dict]:
    """The note, Wan's loaders, the clip (Load Image, Repeat Image Batch, Scale Image: node ``resize``) and its
    latent (``encode``: one latent [1, 16, frames, h, w]), the prompts (``prompt`` the source where asked, ``target``,
    ``empty``: Wan's negative) and the model's shift (``shift``: ModelSamplingSD3)."""
    w, h = WAN_SIZE
    clip = clip_of(WAN)
    nodes = [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        *model_loaders(WAN),
        {"key": "image", "type": "LoadImage", "widgets": {"image": PHOTO}, "title": "Load Image (your clip)"},
        {"key": "frames", "type": "RepeatImageBatch", "widgets": {"amount": 1}, "inputs": {"image": ("image", "IMAGE")},
         "title": "Repeat Image Batch (a still image as a clip: amount 9)"},
        {"key": "resize", "type": "ImageScaleToTotalPixels",
         "widgets": {"upscale_method": "lanczos", "megapixels": round(w * h / 1024 ** 2, 2)},
         "inputs": {"image": ("frames", "IMAGE")},
         "title": f"Scale Image ({w * h / 1024 ** 2:.2f} MP as FiVE's {w}x{h}, its shape kept)"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("resize", "IMAGE"), "vae": vae_of(WAN)}},
    ]
    if source:
        nodes.append({"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_SOURCE},
                      "inputs": {"clip": clip}, "title": "Source prompt"})
    return nodes + [
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": PHOTO_TARGET}, "inputs": {"clip": clip},
         "title": "Target prompt"},
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": WAN_NEGATIVE}, "inputs": {"clip": clip},
         "title": "Negative prompt (Wan's)"},
        {"key": "shift", "type": "ModelSamplingSD3", "widgets": {"shift": shift},
         "inputs": {"model": ("model", "MODEL")}, "title": f"ModelSamplingSD3 (shift {shift:g})"},
    ]


def wan_clip_outputs(edit: str, prefix: str, name: str) -> list[dict]:
    """The edit ``edit`` (an IMAGE of frames) saved as frames (``save``) and, beside the source frame for frame, as an
    animated WebP at Wan's frame rate."""
    return [
        {"key": "pair", "type": "ImageStitch",
         "widgets": {"direction": "right", "match_image_size": True, "spacing_width": 0, "spacing_color": "white"},
         "inputs": {"image1": ("resize", "IMAGE"), "image2": (edit, "IMAGE")},
         "title": f"Source | {name} (frame for frame)"},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": prefix},
         "inputs": {"images": (edit, "IMAGE")}, "title": f"{name} (the frames)"},
        {"key": "save_animation", "type": "SaveAnimatedWEBP",
         "widgets": {"filename_prefix": prefix, "fps": WAN_FPS, "lossless": False, "quality": 90, "method": "default"},
         "inputs": {"images": ("pair", "IMAGE")}, "title": f"Source | {name} (animated WebP)"},
    ]
