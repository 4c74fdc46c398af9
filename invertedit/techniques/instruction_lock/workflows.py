"""The instruction lock's example workflows (``example_workflows/``): Flux.1 Kontext and Qwen-Image-Edit on the
host's loaders as ComfyUI's own templates load them, the image at its own size, inverted with the editor's "keep
it" prompt (the empty instruction with the image as reference) keeping every block's keys and values, and the
instruction sampled through KV-Edit: the mask painted, from a word, or where an unlocked run changed the picture;
and a chain of ten locked edits. Built from ``invertedit/workflows``' parts; ``python -m workshop.make_workflows``
writes them. Plain data."""
from __future__ import annotations

from ...workflows.checkpoint import (KONTEXT, KONTEXT_GUIDANCE, PHOTO, QWEN_CFG, QWEN_EDIT, QWEN_SHIFT, SCHEDULES, Family,
                                     model_loaders, strip)
from ...workflows.toy import SOURCE_PROMPT, TARGET_PROMPT

STEPS, SKIP = 28, 4            # KV-Edit's (the authors' demo: 28 Euler steps, 4 skipped)
INVERT_GUIDANCE = 1.5          # Flux's distilled guidance while inverting (KV-Edit's); Qwen-Image-Edit has none: 1
INSTRUCTION = "Make the dress blue"
WORD = "dress"                 # the edited object's word in the instruction (the mask from a word)
# the ten rounds: the painted dress through nine colours and back to its own (the last round asks for the
# picture's own colour: what is left of the input after ten edits is plain to see)
ROUNDS = tuple(f"Make the dress {c}" for c in ("blue", "green", "yellow", "red", "purple", "orange", "white", "black",
                                                "teal", "pink"))
SHOWN_ROUNDS = (1, 5, 10)

PAINTED_TITLE = "Load Image (your image: paint the region to edit)"

_WHY_EMPTY = ("**Why the empty instruction to invert**: inverting and sampling with the same conditioning gives the "
              "image back; the empty instruction with the image as reference is the editor's own \"keep it\" path, and "
              "the instruction is the edit. ")


def _memory(family: Family) -> str:
    """The kept keys and values: the text's and the image's (KV-Edit's); the reference's only with keep_reference."""
    per_step, blocks = (3.2, "57 blocks and the 512 text tokens") if family is KONTEXT else \
        (2.8, "60 joint blocks, as KV-Edit's on Qwen-Image; the prompt's tokens add a little")
    return (f"**Flow Invert** (Euler, {STEPS} steps) keeps every block's keys and values of the text and the image: "
            f"about {per_step:g} GB per step per megapixel in bfloat16 ({blocks}), about {per_step * STEPS:.0f} GB "
            "for a 1 MP picture, in system memory with keep_values_on cpu (the authors' offload); 'cpu, fp8' halves "
            "it, a 512 px picture quarters it, and the node refuses before the run what does not fit. ")


def _cache_note() -> str:
    return ("**cache_reference** (KV-Edit, off): on, with Flow Invert's keep_reference on (the reference's keys and "
            "values kept too: about as much memory again), the reference's keys and values come from the inversion "
            "instead of being computed at every step: faster, a small difference from the uncached edit "
            "(docs/measurements.md). ")


def _size_note(family: Family) -> str:
    return (f"The picture stays at its own size (no {'FluxKontextImageScale' if family is KONTEXT else 'Scale Image'}: "
            "rescaling is what shifts and crops an instruction edit); VAE Encode crops it to a multiple of 8 pixels. ")


def _setup(family: Family, paint: bool, node: str = "KV-Edit") -> str:
    if family is KONTEXT:
        load = (f"1. **Load Diffusion Model**: your {family.name} model (`{family.unet}`, or the bf16 one); "
                f"**DualCLIPLoader**: `{family.clip}` and `{family.clip2}` (type flux); **Load VAE**: `{family.vae}`. "
                "As ComfyUI's Flux Kontext template loads them (models/diffusion_models, text_encoders, vae).\n")
    else:
        load = (f"1. **Load Diffusion Model**: your {family.name} model (`{family.unet}`, or the bf16 one); **Load "
                f"CLIP**: `{family.clip}` (type {family.clip_type}); **Load VAE**: `{family.vae}`. As ComfyUI's "
                "Qwen Image Edit template loads them.\n")
    image = ("2. **Load Image**: your picture; right click it > **Open in MaskEditor**, paint the region the "
             f"instruction may change and save (Load Image's MASK is the lock's region; nothing painted: {node} "
             "says so).\n" if paint else
             "2. **Load Image**: your picture (the workflow opens with ComfyUI's own `example.png`).\n")
    return f"**To run it on your model** ({family.name}: {family.detail}):\n\n" + load + image + \
        "3. **Instruction**: what to change, as you would ask the editor.\n"


def _how(family: Family, paint: bool, rounds: bool = False) -> str:
    files = ("**Load Diffusion Model**, **DualCLIPLoader**, **Load VAE**" if family is KONTEXT else
             "**Load Diffusion Model**, **Load CLIP**, **Load VAE**")
    what = ("paint the region (right click > Open in MaskEditor), write the ten instructions" if rounds else
            "paint the region (right click > Open in MaskEditor), write the instruction" if paint else
            "write the instruction")
    size = "256 to 512 px and --cache-none" if rounds else "512 px"
    return f"**To run it**: choose your model's files ({files}), your picture, {what}. Start at {size}: the cache is large."


def _encoders(family: Family) -> tuple[str, dict]:
    return ("CLIPTextEncode", {}) if family is KONTEXT else ("TextEncodeQwenImageEdit", {"image": ("image", "IMAGE")})


def _prompt(family: Family, key: str, text: str, title: str, latent: tuple, ref_title: str) -> list[dict]:
    """A prompt of the instruction editor with the image as reference: Kontext's CLIP Text Encode, or
    Qwen-Image-Edit's TextEncodeQwenImageEdit with the image's vision tokens (its vae not connected: that would add
    the image rescaled to 1 MP as the reference), then ReferenceLatent of ``latent`` (node ``key``)."""
    kind, extra = _encoders(family)
    widget = "text" if family is KONTEXT else "prompt"
    return [{"key": f"{key}_text", "type": kind, "widgets": {widget: text}, "inputs": {"clip": ("clip", "CLIP"), **extra},
             "title": title},
            {"key": key, "type": "ReferenceLatent", "inputs": {"conditioning": (f"{key}_text", 0), "latent": latent},
             "title": ref_title}]


def _front(family: Family, intro: str, paint: bool) -> list[dict]:
    """The note, the three loaders, the image (painted or not) and its latent (``encode``), Qwen-Image-Edit's shift
    (``shift``), the keep prompt (``keep``: the empty instruction with the image as reference; Qwen-Image-Edit's
    negative too) and the instruction (``instruction``) with the image as reference."""
    nodes = [{"key": "note", "type": "MarkdownNote", "text": intro}, *model_loaders(family),
             {"key": "image", "type": "LoadImage", "widgets": {"image": PHOTO},
              "title": PAINTED_TITLE if paint else "Load Image (your image)"},
             {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("vae", "VAE")},
              "title": "VAE Encode (the image at its own size)"}]
    if family is QWEN_EDIT:
        nodes.append({"key": "shift", "type": "ModelSamplingAuraFlow", "widgets": {"shift": QWEN_SHIFT},
                      "inputs": {"model": ("model", "MODEL")}, "title": "ModelSamplingAuraFlow (Qwen-Image's shift)"})
    keep = "Keep prompt (empty" + (")" if family is KONTEXT else ", with the image)")
    nodes += _prompt(family, "keep", "", keep, ("encode", "LATENT"),
                     "Keep: the image as reference" + ("" if family is KONTEXT else " (and the negative)"))
    nodes += _prompt(family, "instruction", INSTRUCTION, "Instruction", ("encode", "LATENT"),
                     "Instruction, the image as reference")
    return nodes


def _model(family: Family) -> tuple:
    return ("model", "MODEL") if family is KONTEXT else ("shift", "MODEL")


def _invert(family: Family, key: str, latent: tuple, keep: tuple) -> dict:
    return {"key": key, "type": "InvertEditFlowInvert",
            "widgets": {"solver": "euler", "steps": STEPS, "scheduler": SCHEDULES[family.name],
                        "guidance": INVERT_GUIDANCE if family is KONTEXT else 1.0, "share_steps": 0,
                        "share_from_block": 20, "keep_values_on": "cpu", "keep_keys_values": True},
            "inputs": {"model": _model(family), "latent": latent, "positive": keep},
            "title": "Flow Invert (the keep prompt, keeping keys and values)"}


def _kv_edit(family: Family, key: str, inversion: tuple, mask: tuple) -> dict:
    return {"key": key, "type": "InvertEditKVEdit",
            "widgets": {"skip_steps": SKIP, "attn_scale": 1.0, "re_init": False, "seed": 0, "cache_reference": False},
            "inputs": {"model": _model(family), "inversion": inversion, "mask": mask},
            "title": "KV-Edit (the lock: outside the mask, the image)"}


def _guider(family: Family, key: str, model: tuple, instruction: tuple, keep: tuple, guidance: str | None = None) -> list[dict]:
    """The instruction's guider on ``model``: Kontext's FluxGuidance (node ``guidance``, or a new ``{key}_guidance``)
    and BasicGuider; Qwen-Image-Edit's CFGGuider at true cfg with the keep prompt (the empty instruction with the
    reference) as the negative."""
    if family is KONTEXT:
        nodes = [] if guidance else [{"key": f"{key}_guidance", "type": "FluxGuidance",
                                      "widgets": {"guidance": KONTEXT_GUIDANCE}, "inputs": {"conditioning": instruction},
                                      "title": f"FluxGuidance ({KONTEXT_GUIDANCE:g}, Kontext's)"}]
        return nodes + [{"key": f"{key}_guider", "type": "BasicGuider",
                         "inputs": {"model": model, "conditioning": (guidance or f"{key}_guidance", 0)}}]
    return [{"key": f"{key}_guider", "type": "CFGGuider", "widgets": {"cfg": QWEN_CFG},
             "inputs": {"model": model, "positive": instruction, "negative": keep}}]


def _sample(key: str, noise: tuple, sigmas: tuple, latent: tuple, title: str) -> dict:
    return {"key": key, "type": "SamplerCustomAdvanced", "title": title,
            "inputs": {"noise": noise, "guider": (f"{key}_guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                       "sigmas": sigmas, "latent_image": latent}}


def _decode(key: str, samples: tuple) -> dict:
    return {"key": key, "type": "VAEDecode", "inputs": {"samples": samples, "vae": ("vae", "VAE")}}


def _scale(family: Family) -> str:
    return f"guidance {KONTEXT_GUIDANCE:g}" if family is KONTEXT else f"true cfg {QWEN_CFG:g}, the keep prompt as negative"


def _graph(family: Family, mask_from: str, prefix: str, intro: str) -> dict:
    """One locked edit: the mask painted (``mask_from`` "paint"), of a word ("word", Kontext), or where an unlocked
    run of the editor changed the picture ("auto")."""
    paint = mask_from == "paint"
    model = _model(family)
    nodes = _front(family, intro, paint) + [
        _invert(family, "invert", ("encode", "LATENT"), ("keep", 0)),
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
    ]
    if family is KONTEXT:
        nodes.append({"key": "guidance", "type": "FluxGuidance", "widgets": {"guidance": KONTEXT_GUIDANCE},
                      "inputs": {"conditioning": ("instruction", 0)}, "title": f"FluxGuidance ({KONTEXT_GUIDANCE:g}, Kontext's)"})
    guidance = "guidance" if family is KONTEXT else None
    panels = [("image", "image")]
    if mask_from == "paint":
        mask = ("image", "MASK")
    elif mask_from == "word":
        mask = ("store", "MASK")
        nodes.append({"key": "store", "type": "InvertEditAttentionStore",
                      "widgets": {"prompt": INSTRUCTION, "words": WORD, "start": 0.0, "end": 1.0, "threshold": 0.3,
                                  "dit_blocks": "all", "mask_pool": 3},
                      "inputs": {"model": model, "clip": ("clip", "CLIP"), "inversion": ("invert", 0),
                                 "image": ("image", "IMAGE")},
                      "title": f"Attention Store (the mask of '{WORD}')"})
    else:   # the plain editor as its users run it, then the region it changed
        nodes += _guider(family, "unlocked", model, ("instruction", 0), ("keep", 0), guidance) + [
            {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": 0}, "title": "RandomNoise (the unlocked run's)"},
            {"key": "schedule", "type": "BasicScheduler",
             "widgets": {"scheduler": SCHEDULES[family.name], "steps": STEPS, "denoise": 1.0},
             "inputs": {"model": model}, "title": f"BasicScheduler ({STEPS} steps, the inversion's)"},
            _sample("unlocked", ("noise", "NOISE"), ("schedule", "SIGMAS"), ("encode", "LATENT"),
                    f"Unlocked edit (the plain editor, {_scale(family)})"),
            _decode("unlocked_decode", ("unlocked", 0)),
            {"key": "region", "type": "InvertEditChangedRegion", "widgets": {"threshold": 0.3, "grow": 1},
             "inputs": {"image": ("encode", "LATENT"), "edited": ("unlocked", 0)},
             "title": "Changed Region (where the unlocked edit changed the picture)"},
        ]
        mask = ("region", "MASK")
        panels += [("unlocked_decode", "unlocked edit"), ("region", "change")]
    nodes += [_kv_edit(family, "kv", ("invert", 0), mask),
              {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": mask}, "title": "The mask"}]
    nodes += _guider(family, "edit", ("kv", "MODEL"), ("instruction", 0), ("keep", 0), guidance)
    nodes += [_sample("edit", ("kv", "NOISE"), ("kv", "SIGMAS"), ("encode", "LATENT"),
                      f"Locked edit (the instruction, {_scale(family)})"),
              _decode("edit_decode", ("edit", 0))]
    if paint:
        next(n for n in nodes if n["key"] == "image")["title"] = PAINTED_TITLE
    panels += [("mask_image", "mask"), ("edit_decode", "locked edit")]
    return {"nodes": nodes + strip(panels, prefix, " | ".join(name for _, name in panels)),
            "how": _how(family, paint)}


def _heading(family: Family, what: str) -> str:
    editor = "Flux.1 Kontext" if family is KONTEXT else "Qwen-Image-Edit"
    return f"# {editor}: instruction lock{what}\n\n"


def _edit_note(family: Family) -> str:
    return (f"**KV-Edit** (Zhu et al.; {SKIP} steps skipped, attn_scale 1) remakes only the masked region, attending to "
            f"the kept keys and values of the rest, and hands back the image's own latent outside the mask; the "
            f"stock **SamplerCustomAdvanced** (euler, KV-Edit's NOISE and SIGMAS) samples the instruction "
            f"({_scale(family)}) from there: outside the mask the output latent is the input's (within float "
            "rounding, 1e-6), at its size, with no shift or crop. ")


def _intro(family: Family, mask_from: str) -> str:
    what = {"paint": "", "word": " from a word", "auto": " (automatic)"}[mask_from]
    mask = {"paint": "",
            "word": (f"**Mask** from a word: **Attention Store** evaluates the instruction on the same inversion and "
                     f"gives the region its word '{WORD}' is attended in, grown by one cell of the maps (mask_pool 3). "
                     "Check it in the pictures; paint one where it misses. "),
            "auto": ("**Mask** found automatically: the plain editor runs first (the instruction, "
                     f"{_scale(family)}, RandomNoise, euler, {STEPS} steps from the image's latent), and **Changed "
                     "Region** compares its latent with the image's, cell by cell (8 px, averaged over 3 x 3 cells so "
                     "that a small shift of the whole picture does not count): the cells changed at least 0.3 of the "
                     "most, grown by one, are the mask. Its *change* picture shows where; lower threshold to give "
                     "the instruction more. ")}[mask_from]
    pictures = {"paint": "The pictures: the mask, the locked edit.",
                "word": "The pictures: the mask, the locked edit.",
                "auto": "The pictures: the unlocked edit, the change, the mask, the locked edit."}[mask_from]
    model = ("" if family is KONTEXT else
             f"**ModelSamplingAuraFlow** at shift {QWEN_SHIFT:g} as the Qwen-Image workflows; the prompts through "
             "**TextEncodeQwenImageEdit** with the image (its vision tokens; its vae input left empty, which would add "
             "the image rescaled to 1 MP as a reference: the shift) and **ReferenceLatent** of the image's latent. ")
    return _heading(family, what) + _setup(family, mask_from == "paint") + "\n" + _paragraphs(
        _size_note(family) + model + _WHY_EMPTY, mask, _memory(family), _edit_note(family), _cache_note(), pictures)


def _paragraphs(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p.strip())


def kontext_lock() -> dict:
    return _graph(KONTEXT, "paint", "invertedit/kontext_instruction_lock", _intro(KONTEXT, "paint"))


def kontext_lock_word() -> dict:
    return _graph(KONTEXT, "word", "invertedit/kontext_instruction_lock_word", _intro(KONTEXT, "word"))


def kontext_lock_auto() -> dict:
    return _graph(KONTEXT, "auto", "invertedit/kontext_instruction_lock_auto", _intro(KONTEXT, "auto"))


def qwen_edit_lock() -> dict:
    return _graph(QWEN_EDIT, "paint", "invertedit/qwen_image_edit_instruction_lock", _intro(QWEN_EDIT, "paint"))


def qwen_edit_lock_word() -> dict:
    return _graph(QWEN_EDIT, "word", "invertedit/qwen_image_edit_instruction_lock_word", _intro(QWEN_EDIT, "word"))


def qwen_edit_lock_auto() -> dict:
    return _graph(QWEN_EDIT, "auto", "invertedit/qwen_image_edit_instruction_lock_auto", _intro(QWEN_EDIT, "auto"))


def _rounds(family: Family, prefix: str) -> dict:
    """Ten locked edits chained through latents (no VAE round trip between rounds, which is what keeps the outside
    exact): round k's reference and inversion take round k-1's output latent; one painted mask; an instruction
    per round; rounds 1, 5 and 10 decoded. On Qwen-Image-Edit the prompts' vision tokens are of round k-1's picture
    (its latent decoded for the text encoder only: the chain itself stays in latents)."""
    kontext = family is KONTEXT
    editor = "Kontext" if kontext else "Qwen-Image-Edit"
    vision = ("" if kontext else " On Qwen-Image-Edit each round's prompts see round k-1's picture (its latent "
              "decoded for TextEncodeQwenImageEdit's vision tokens only: the chain stays in latents). ")
    intro = (_heading(family, ", ten rounds") + _setup(family, True).replace(
                 "3. **Instruction**: what to change, as you would ask the editor.",
                 f"3. **Instructions 1 to {len(ROUNDS)}**: one per round (here the dress through nine colours and "
                 "back to its own).") + "\n" + _paragraphs(
             f"Ten locked edits in a chain, each as in *{editor} - Instruction lock*: round k inverts round k-1's "
             "output latent with the keep prompt (the empty instruction, that latent as reference) and samples "
             "instruction k through **KV-Edit** with the one painted mask. The rounds pass **latents** (no VAE "
             "Decode and Encode between them: a VAE round trip per round is what makes plain repeated edits decay), "
             "so after ten rounds the picture outside the mask is still the input's latent (within float rounding, "
             "1e-6: it does not add up over the rounds). " + vision + _size_note(family) + _WHY_EMPTY, _memory(family) +
             "ComfyUI keeps every node's output until the next run, so the ten caches add up: start ComfyUI with "
             "--cache-none (each round's cache freed once used) and work at 256 to 512 px.", _cache_note(),
             "The pictures: the mask, rounds 1, 5 and 10."))
    nodes = _front(family, intro, True)
    nodes = [n for n in nodes if n["key"] not in ("instruction", "instruction_text")]
    nodes += [{"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
              {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("image", "MASK")}, "title": "The mask"}]
    if not kontext:   # each round's keep prompt its own (the vision tokens of that round's picture)
        nodes = [n for n in nodes if n["key"] != "keep_text"]
    latent, picture = ("encode", "LATENT"), ("image", "IMAGE")
    start = len(nodes)
    for k, text in enumerate(ROUNDS, 1):
        if not kontext and k > 1:   # round k-1's picture for the vision tokens
            if k - 1 not in SHOWN_ROUNDS:
                nodes.append(_decode(f"round_{k - 1}_decode", latent))
            picture = (f"round_{k - 1}_decode", 0)
        prompt = _prompt(family, f"instruction_{k}", text, f"Instruction {k}", latent,
                         f"Round {k}: instruction {k}, the last latent as reference")
        keep_text = "keep_text"
        if not kontext:
            prompt[0]["inputs"]["image"] = picture
            keep_text = f"keep_text_{k}"
            nodes.append({"key": keep_text, "type": "TextEncodeQwenImageEdit", "widgets": {"prompt": ""},
                          "inputs": {"clip": ("clip", "CLIP"), "image": picture},
                          "title": f"Round {k}: keep prompt (empty, with the last picture)"})
        nodes += prompt
        keep = f"keep_{k}"
        nodes.append({"key": keep, "type": "ReferenceLatent", "inputs": {"conditioning": (keep_text, 0), "latent": latent},
                      "title": f"Round {k}: keep, the last latent as reference"})
        nodes.append(dict(_invert(family, f"invert_{k}", latent, (keep, 0)), title=f"Round {k}: Flow Invert"))
        nodes.append(dict(_kv_edit(family, f"kv_{k}", (f"invert_{k}", 0), ("image", "MASK")), title=f"Round {k}: KV-Edit"))
        nodes += _guider(family, f"round_{k}", (f"kv_{k}", "MODEL"), (f"instruction_{k}", 0), (keep, 0))
        nodes.append(_sample(f"round_{k}", (f"kv_{k}", "NOISE"), (f"kv_{k}", "SIGMAS"), latent,
                             f"Round {k}: locked edit"))
        latent = (f"round_{k}", 0)
        if k in SHOWN_ROUNDS:
            nodes.append(_decode(f"round_{k}_decode", latent))
    # the keep prompt's own ReferenceLatent (the image's) is round 1's: drop the front's
    nodes = [n for n in nodes if n["key"] != "keep"]
    # on the canvas: round 1's inversion and KV-Edit show their settings (the other rounds' are the same); the rest of
    # each round, which has none to set, collapsed
    for n in nodes[start - 1:]:
        if n["type"] in ("ReferenceLatent", "FluxGuidance", "BasicGuider", "CFGGuider", "SamplerCustomAdvanced") or (
                n["type"] in ("InvertEditFlowInvert", "InvertEditKVEdit") and not n["key"].endswith("_1")):
            n["collapsed"] = True
    panels = [("image", "image"), ("mask_image", "mask")] + [(f"round_{k}_decode", f"round {k}") for k in SHOWN_ROUNDS]
    return {"nodes": nodes + strip(panels, prefix, " | ".join(name for _, name in panels)),
            "how": _how(family, True, rounds=True)}


def kontext_rounds() -> dict:
    return _rounds(KONTEXT, "invertedit/kontext_instruction_lock_rounds")


def qwen_edit_rounds() -> dict:
    return _rounds(QWEN_EDIT, "invertedit/qwen_image_edit_instruction_lock_rounds")


WARMUP, REFRESH = 6, "16"      # RegionE's Kontext and Qwen-Image-Edit settings (of 28 steps)


def kontext_region_lock() -> dict:
    """Region Lock on Kontext: the plain editor's own run (no inversion), the latent outside the painted region held
    on the straight path to the image, and RegionE's region cache after 6 warm-up steps (a refresh at 16)."""
    family = KONTEXT
    intro = _heading(family, " without an inversion (Region Lock, fast)") + _setup(family, True, "Region Lock") + \
        "\n" + _paragraphs(
        "**Region Lock** patches the editor's model: it samples as it always does (the instruction, "
        f"{_scale(family)}, RandomNoise, euler, {STEPS} steps from the image's latent), but outside the painted "
        "region the latent is held on the straight path from the run's noise to the image, so the output there is "
        "your image, to float rounding (1e-6), at its own size. With **region_cache** (RegionE's region-instruction "
        f"KV cache), after {WARMUP} warm-up steps on every token (and again at step {REFRESH}) the model computes "
        "only the text's and the region's tokens, against the keys and values of the rest from the last full step: "
        "about 2.4x faster than the plain editor when a third of the picture is edited (computed at 1 MP; "
        "docs/measurements.md), at a small difference to the uncached run. No inversion and no kept cache of every "
        "step: the memory of one step's keys and values. " + _size_note(family),
        "*Kontext - Instruction lock* edits the region from the image's own inversion instead (its layout kept, an "
        "inversion's time and memory); this one lets the editor redraw it as it would.",
        "The pictures: the mask, the locked edit.")
    nodes = [n for n in _front(family, intro, True) if n["key"] not in ("keep", "keep_text")]
    nodes += [
        {"key": "lock", "type": "InvertEditRegionLock",
         "widgets": {"region_cache": True, "warmup_steps": WARMUP, "refresh_steps": REFRESH},
         "inputs": {"model": _model(family), "latent": ("encode", "LATENT"), "mask": ("image", "MASK")},
         "title": "Region Lock (outside the mask, the image)"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "euler"}},
        {"key": "noise", "type": "RandomNoise", "widgets": {"noise_seed": 0}},
        {"key": "schedule", "type": "BasicScheduler",
         "widgets": {"scheduler": SCHEDULES[family.name], "steps": STEPS, "denoise": 1.0},
         "inputs": {"model": _model(family)}, "title": f"BasicScheduler ({STEPS} steps)"},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("image", "MASK")}, "title": "The mask"},
    ]
    nodes += _guider(family, "edit", ("lock", "MODEL"), ("instruction", 0), ("instruction", 0))
    nodes += [_sample("edit", ("noise", "NOISE"), ("schedule", "SIGMAS"), ("encode", "LATENT"),
                      f"Locked edit (the instruction, {_scale(family)})"),
              _decode("edit_decode", ("edit", 0))]
    panels = [("image", "image"), ("mask_image", "mask"), ("edit_decode", "locked edit")]
    return {"nodes": nodes + strip(panels, "invertedit/kontext_region_lock", " | ".join(n for _, n in panels)),
            "how": _how(family, True)}


WORKFLOWS = {"Kontext - Instruction lock": kontext_lock, "Kontext - Instruction lock from a word": kontext_lock_word,
             "Kontext - Instruction lock (automatic)": kontext_lock_auto,
             "Kontext - Instruction lock (ten rounds)": kontext_rounds,
             "Qwen-Image-Edit - Instruction lock": qwen_edit_lock,
             "Qwen-Image-Edit - Instruction lock from a word": qwen_edit_lock_word,
             "Qwen-Image-Edit - Instruction lock (automatic)": qwen_edit_lock_auto,
             "Qwen-Image-Edit - Instruction lock (ten rounds)": qwen_edit_rounds,
             "Kontext - Region Lock (fast)": kontext_region_lock}

# On the tiny random models (the tests, the card runs): Kontext on the Demo Model's flux-dev, Qwen-Image-Edit on its
# qwen-image (both take reference latents as the real editors do; random weights draw noise and follow no
# instruction: the mechanics), the one-object sample at 128 px, a 64 px box in the middle painted
CHECKPOINT_BUILTIN = {name: "demo-flux-dev" if name.startswith("Kontext") else "demo-qwen-image" for name in WORKFLOWS}
_PAINTED = {"LoadImage": {"paint_mask": [32, 32, 64, 64]}}
CHECKPOINT = {name: (dict(_PAINTED) if "word" not in name and "automatic" not in name else {}, {}) for name in WORKFLOWS}
# a random model's word maps spread over the picture: the cells attended most, not grown
for _name in ("Kontext - Instruction lock from a word", "Qwen-Image-Edit - Instruction lock from a word"):
    CHECKPOINT[_name] = ({"InvertEditAttentionStore": {"threshold": 0.8, "mask_pool": 1}}, {})
# a random model's unlocked run redraws every cell, so Changed Region keeps the cells that changed most (the real
# editor changes the instructed object far more than the rest: its own 0.3)
# (the tiny random Qwen-Image changes its cells more evenly than the tiny Flux: a higher threshold)
for _name, _threshold in (("Kontext - Instruction lock (automatic)", 0.8),
                          ("Qwen-Image-Edit - Instruction lock (automatic)", 0.95)):
    CHECKPOINT[_name] = ({"InvertEditChangedRegion": {"threshold": _threshold, "grow": 0}}, {})
# the ten rounds in the tests: 8 steps, 2 skipped (ten inversions of 28 steps are the slowest of the suite)
for _name in ("Kontext - Instruction lock (ten rounds)", "Qwen-Image-Edit - Instruction lock (ten rounds)"):
    CHECKPOINT[_name] = (dict(_PAINTED), {"InvertEditFlowInvert": {"steps": 8}, "InvertEditKVEdit": {"skip_steps": 2}})

# The cards (``workshop.make_thumbnails``): no built-in model follows instructions (the toy worlds' models draw
# captions; the tiny random Kontext and Qwen-Image-Edit draw noise), so a card shows the lock where a built-in model
# draws: the painted and word ones KV-Edit's Flux templates (the same lock on a caption edit, ``STAND_INS`` there);
# the automatic and ten-round ones their Kontext template run on the toy flow model (Flux.1's architecture, reference
# latents appended as Kontext's), the toy world's captions typed as instructions and the painted box over the red
# circle: what the lock keeps and what the unlocked run or the rounds do to the rest. name -> (the template run,
# the runner's builtin, its overrides)
_TOY_TARGET, _TOY_SOURCE = TARGET_PROMPT, SOURCE_PROMPT   # the toy world's captions
_ROUNDS_CARD = {f"Instruction {k}": {"value": _TOY_TARGET if k % 2 else _TOY_SOURCE} for k in range(1, len(ROUNDS) + 1)}
CARD_RUNS = {
    "Kontext - Instruction lock": ("Flux - KV-Edit", None, None),
    "Qwen-Image-Edit - Instruction lock": ("Flux - KV-Edit", None, None),
    "Kontext - Instruction lock from a word": ("Flux - KV-Edit from a word", None, None),
    "Qwen-Image-Edit - Instruction lock from a word": ("Flux - KV-Edit from a word", None, None),
    "Kontext - Instruction lock (automatic)": ("Kontext - Instruction lock (automatic)", "toy-flow",
                                               {"Instruction": {"value": _TOY_TARGET}}),
    "Qwen-Image-Edit - Instruction lock (automatic)": ("Kontext - Instruction lock (automatic)", "toy-flow",
                                                       {"Instruction": {"value": _TOY_TARGET}}),
    "Kontext - Instruction lock (ten rounds)": ("Kontext - Instruction lock (ten rounds)", "toy-flow",
                                                dict(_ROUNDS_CARD, LoadImage={"paint_mask": [20, 30, 112, 112]})),
    "Qwen-Image-Edit - Instruction lock (ten rounds)": ("Kontext - Instruction lock (ten rounds)", "toy-flow",
                                                        dict(_ROUNDS_CARD, LoadImage={"paint_mask": [20, 30, 112, 112]})),
    "Kontext - Region Lock (fast)": ("Kontext - Region Lock (fast)", "toy-flow",
                                     {"Instruction": {"value": _TOY_TARGET}, "LoadImage": {"paint_mask": [20, 30, 112, 112]}}),
}
