"""The parts the example workflows on the built-in Toy World Model are made of: the toy worlds'
prompts and settings, and the node groups several techniques' workflows share (the model, the
sample image, DDIM Invert and Apply Inversion, stock samplers, decode and save). Each technique's
``workflows.py`` composes them; ``workshop/make_workflows.py`` turns the descriptions into the
editor's format with the booted host's node definitions. Plain data (no torch, no host)."""
from __future__ import annotations

from ..demo.worlds import DEFAULT_WORLD, WORLDS, WORLD_1, WORLD_2


# The toy worlds the workflows are written for (the Toy World Model node's `world`): each one's
# sample image (assets/) and image side come from invertedit/demo/worlds.py; here its prompts (the
# target swaps one word: same token count), the edited object's noun in each, a change of shape
# for the editors made for one (MasaCtrl), Plug-and-Play's target, MasaCtrl's first decoder
# self-attention layer, the note. The workflows run on world 2 (two objects, 512 px like SD1.5),
# whose model points each word at its object, so that what a technique keeps and what it changes
# can be seen (tests/host/test_workflows.py reads the edits). Imagic stays on world 1 (imagic_edit
# says why).
_WORLD_SETTINGS = {
    WORLD_1: {
        "source": "a red circle on a blue background",
        "target": "a red square on a blue background", "nouns": ("circle", "square"), "background": "blue",
        "shape_target": "a red square on a blue background", "shape_nouns": ("circle", "square"),
        "pnp_target": "a green circle on a yellow background",
        "masactrl_layer": 6,   # the toy UNet has 10 self-attention layers: 6 of 10 ~ SD1.5's 10 of 16
        "note": "a tiny model trained on 128 px scenes of one coloured shape on a flat background"},
    WORLD_2: {
        "source": "a red circle and a blue square on a green background",
        # a colour edit: the edits this model gets right (docs/measurements.md: Prompt-to-Prompt 92-96% of colour
        # edits, 56-68% of shape edits); MasaCtrl and ProxEdit's MasaCtrl, made for changes of shape, get one
        "target": "a yellow circle and a blue square on a green background", "nouns": ("circle", "circle"),
        "shape_target": "a red triangle and a blue square on a green background", "shape_nouns": ("circle", "triangle"),
        "background": "green", "pnp_target": "a yellow circle and a blue square on a green background",
        "masactrl_layer": 2,   # its 4 self-attention layers: 2-3 are the decoder's (SD1.5: 10-15 of 16)
        "note": "a tiny model trained on 512 px scenes of two coloured shapes on a flat background"},
}


TOY_WORLDS = {name: dict(settings, sample=WORLDS[name].sample, size=WORLDS[name].size)
              for name, settings in _WORLD_SETTINGS.items()}


TOY_WORLD = DEFAULT_WORLD


ONE_OBJECT_WORLD = WORLD_1   # Imagic's (imagic_edit says why)


TOY = TOY_WORLDS[TOY_WORLD]


SAMPLE = TOY["sample"]


SOURCE_PROMPT, TARGET_PROMPT = TOY["source"], TOY["target"]


SOURCE_NOUN, TARGET_NOUN = TOY["nouns"]   # the edited object's noun in each prompt


def swapped(source: str, target: str) -> tuple[int, str, str]:
    """The one word ``target`` swaps in ``source``: (its index, the source's word, the target's)."""
    (i,) = [i for i, (a, b) in enumerate(zip(source.split(), target.split())) if a != b]
    return i, source.split()[i], target.split()[i]


SWAP_AT, SOURCE_WORD, TARGET_WORD = swapped(SOURCE_PROMPT, TARGET_PROMPT)   # "red" -> "yellow"


EDIT_CFG = 5.0   # the naive edit's guidance: at cfg 1 the toy model barely follows a changed word


MODEL_LOADER = {"key": "model", "type": "InvertEditToyModel", "widgets": {"world": TOY_WORLD},
                "title": "Toy World Model (built-in demo; replace with Load Checkpoint for real images)"}


def toy_note(world: str = TOY_WORLD) -> str:
    w = TOY_WORLDS[world]
    return (f"The **Toy World Model** is the pack's built-in demo: {w['note']} ('{w['source']}'). Swap in "
            "**Load Checkpoint** with an SD checkpoint and your own image (and prompts) for real results.")


TOY_NOTE = toy_note()


STEPS = 50


def inversion_nodes(intro: str, world: str = TOY_WORLD) -> list[dict]:
    """Shared front half: demo model, prompt, sample image -> VAE Encode -> DDIM Invert -> Apply Inversion."""
    return [
        {"key": "note", "type": "MarkdownNote", "text": intro},
        dict(MODEL_LOADER, widgets={"world": world}),
        {"key": "image", "type": "LoadImage", "widgets": {"image": TOY_WORLDS[world]["sample"]}},
        {"key": "prompt", "type": "CLIPTextEncode", "widgets": {"text": TOY_WORLDS[world]["source"]},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Source prompt"},
        {"key": "encode", "type": "VAEEncode", "inputs": {"pixels": ("image", "IMAGE"), "vae": ("model", "VAE")}},
        {"key": "invert", "type": "InvertEditDDIMInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0)}},
    ]


def vae_roundtrip() -> list[dict]:
    return [
        {"key": "decode_source", "type": "VAEDecode", "inputs": {"samples": ("encode", "LATENT"), "vae": ("model", "VAE")}},
        {"key": "save_source", "type": "PreviewImage",
         "inputs": {"images": ("decode_source", "IMAGE")}, "title": "VAE round trip (the best a reconstruction can do)"},
    ]


def ksampler_advanced(key: str, prompt: str, latent: tuple = ("invert", "LATENT"), *, model: str = "apply",
                      negative: str | None = None, cfg: float = 1.0) -> dict:
    """Stock KSamplerAdvanced from the inverted latent: no added noise, the inversion's steps and scheduler."""
    return {"key": key, "type": "KSamplerAdvanced",
            "widgets": {"add_noise": "disable", "noise_seed": 0, "steps": STEPS, "cfg": cfg, "sampler_name": "ddim",
                        "scheduler": "ddim_uniform", "start_at_step": 0, "end_at_step": 10000,
                        "return_with_leftover_noise": "disable"},
            "inputs": {"model": (model, "MODEL"), "positive": (prompt, 0), "negative": (negative or prompt, 0),
                       "latent_image": latent}}


def pair_sampler(cfg: float, editor: str = "inject") -> dict:
    """One stock KSamplerAdvanced run of a pair editor's batch (source row, target row): the
    editor's CONDITIONING and LATENT, the patched model of Apply Inversion ('apply')."""
    return {"key": "sample", "type": "KSamplerAdvanced",
            "widgets": {"add_noise": "disable", "noise_seed": 0, "steps": STEPS, "cfg": cfg, "sampler_name": "ddim",
                        "scheduler": "ddim_uniform", "start_at_step": 0, "end_at_step": 10000,
                        "return_with_leftover_noise": "disable"},
            "inputs": {"model": ("apply", "MODEL"), "positive": (editor, "CONDITIONING"), "negative": ("empty", 0),
                       "latent_image": (editor, "LATENT")}}


def toy_inject(cross: float = 0.8, self_: float = 0.4) -> dict:
    """Attention Inject (Prompt-to-Prompt replace) of the toy world's edit; the paper's 0.8 / 0.4 by default."""
    return {"key": "inject", "type": "InvertEditAttentionInject",
            "widgets": {"source_prompt": SOURCE_PROMPT, "target_prompt": TARGET_PROMPT, "mode": "replace", "reweight": "",
                        "cross_replace": cross, "self_replace": self_},
            "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "latent": ("invert", "LATENT")}}


def draw_samples(runs: tuple, prefix: str) -> list[dict]:
    """For each (key, model node, prompt node, title) of ``runs``: the stock KSampler (seed 0, 20 ddim
    steps at ``EDIT_CFG``, the empty negative) from the empty latent ``noise_latent``, decoded and
    saved as ``<prefix>_<key>``."""
    nodes = []
    for key, model, prompt, title in runs:
        nodes.append(
            {"key": f"sample_{key}", "type": "KSampler",
             "widgets": {"seed": 0, "steps": 20, "cfg": EDIT_CFG, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                         "denoise": 1.0},
             "inputs": {"model": (model, "MODEL"), "positive": (prompt, 0), "negative": ("empty", 0),
                        "latent_image": ("noise_latent", "LATENT")}})
        nodes += decode_and_save(key, f"sample_{key}", f"{prefix}_{key}", title)
    return nodes


def decode_and_save(key: str, samples: str, prefix: str, title: str) -> list[dict]:
    """VAE Decode of ``samples`` and a Save Image (``prefix``). A workflow keeps one Save Image, its
    result (its spec's ``result``, or its only one); workshop.make_workflows turns the others into
    Preview Image nodes of the same title."""
    return [
        {"key": f"decode_{key}", "type": "VAEDecode", "inputs": {"samples": (samples, "LATENT"), "vae": ("model", "VAE")}},
        {"key": f"save_{key}", "type": "SaveImage", "widgets": {"filename_prefix": prefix},
         "inputs": {"images": (f"decode_{key}", "IMAGE")}, "title": title},
    ]


RECONSTRUCTION, EDIT = "Reconstruction", "Edit"   # the titles of a pair's two pictures (the cards' labels)


def decode_pair(samples: str, prefix: str, edit: str = EDIT, reconstruction: str = RECONSTRUCTION) -> list[dict]:
    """A pair's batch (row 0 the source's reconstruction, row 1 the edit) decoded once and split: the
    reconstruction previewed, the edit saved (``prefix``)."""
    return [
        {"key": "decode_pair", "type": "VAEDecode", "inputs": {"samples": (samples, "LATENT"), "vae": ("model", "VAE")}},
        {"key": "pair_source", "type": "ImageFromBatch", "widgets": {"batch_index": 0, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": "Row 0: the source"},
        {"key": "pair_edit", "type": "ImageFromBatch", "widgets": {"batch_index": 1, "length": 1},
         "inputs": {"image": ("decode_pair", "IMAGE")}, "title": "Row 1: the target"},
        {"key": "show_reconstruction", "type": "PreviewImage", "inputs": {"images": ("pair_source", "IMAGE")},
         "title": reconstruction},
        {"key": "save_pair", "type": "SaveImage", "widgets": {"filename_prefix": prefix},
         "inputs": {"images": ("pair_edit", "IMAGE")}, "title": edit},
    ]


def own_sampler_workflow(intro: str, invert: dict, sampler: str, runs: list[tuple]) -> dict:
    """An inversion sampled back with its own SAMPLER (EDICT's, edit-friendly DDPM's): the sample image
    inverted by the ``invert`` node (its type and widgets) with the source prompt and an empty negative,
    Apply Inversion, the ``sampler`` node and DisableNoise, then one SamplerCustomAdvanced run with the
    inversion's SIGMAS and LATENT per (key, prompt node, cfg, prefix, title) of ``runs``."""
    nodes = [n for n in inversion_nodes(intro) if n["key"] not in ("invert", "apply")]
    nodes += [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "target", "type": "CLIPTextEncode", "widgets": {"text": TARGET_PROMPT},
         "inputs": {"clip": ("model", "CLIP")}, "title": "Target prompt"},
        {"key": "invert", **invert,
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0),
                    "negative": ("empty", 0)}},
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("model", "MODEL"), "inversion": ("invert", 0)}},
        {"key": "sampler", "type": sampler, "inputs": {"inversion": ("invert", 0)}},
        {"key": "noise", "type": "DisableNoise"},
    ]
    for key, prompt, cfg, prefix, title in runs:
        nodes += [
            {"key": f"guider_{key}", "type": "CFGGuider", "widgets": {"cfg": cfg},
             "inputs": {"model": ("apply", "MODEL"), "positive": (prompt, 0), "negative": ("empty", 0)}},
            {"key": f"sample_{key}", "type": "SamplerCustomAdvanced",
             "inputs": {"noise": ("noise", "NOISE"), "guider": (f"guider_{key}", "GUIDER"),
                        "sampler": ("sampler", "SAMPLER"), "sigmas": ("invert", "SIGMAS"),
                        "latent_image": ("invert", "LATENT")}},
        ]
        nodes += decode_and_save(key, f"sample_{key}", prefix, title)
    return {"nodes": nodes + vae_roundtrip()}


def pair_editor_workflow(intro: str, editor: dict, prefix: str, title: str, source_prompt: str | None = None,
                         world: str = TOY_WORLD) -> dict:
    """Invert the sample (DDIM + Direct Inversion), patch with a pair editor, sample the pair once."""
    nodes = [n for n in inversion_nodes(intro, world) if n["key"] != "apply"]
    for n in nodes:
        if n["key"] == "prompt":
            n["widgets"] = {"text": TOY_WORLDS[world]["source"] if source_prompt is None else source_prompt}
    nodes += [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "direct", "type": "InvertEditDirectInversion", "inputs": {"inversion": ("invert", 0)}},
        dict(editor, key="editor", inputs={"model": ("model", "MODEL"), "clip": ("model", "CLIP"),
                                           "latent": ("invert", "LATENT")}),
        {"key": "apply", "type": "InvertEditApplyInversion",
         "inputs": {"model": ("editor", "MODEL"), "inversion": ("direct", 0)}},
        pair_sampler(EDIT_CFG, "editor"),
    ]
    nodes += decode_pair("sample", prefix)
    return {"nodes": nodes + vae_roundtrip()}


def edit_friendly_guided(guider: str, title: str) -> list[dict]:
    """SamplerCustomAdvanced with the guider node ``guider``, the Edit-Friendly DDPM Sampler,
    DisableNoise and the inversion's SIGMAS/LATENT ('invert'); decoded and saved."""
    return [
        {"key": "sampler", "type": "InvertEditDDPMSampler", "inputs": {"inversion": ("invert", 0)}},
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": (guider, "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("invert", "LATENT")}},
    ] + decode_and_save(guider, "sample", f"invertedit/{guider}_edit", title)


def guided_pair_workflow(intro: str, inversion: list[dict], editor: dict, guider: dict, prefix: str) -> dict:
    """Invert the sample (``inversion``: refinements of DDIM Invert; the last one's output is the
    INVERSION), patch with a pair editor, guide its pair with the GUIDER node ``guider``, sample
    once with SamplerCustomAdvanced (ddim, the inversion's SIGMAS, the editor's LATENT)."""
    source = inversion[-1]["key"] if inversion else "invert"
    nodes = [n for n in inversion_nodes(intro) if n["key"] != "apply"] + inversion + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        dict(editor, key="editor", inputs={"model": ("model", "MODEL"), "clip": ("model", "CLIP"),
                                           "latent": ("invert", "LATENT")}),
        dict(guider, key="guider", inputs={"model": ("editor", "MODEL"), "positive": ("editor", "CONDITIONING"),
                                           "negative": ("empty", 0), "inversion": (source, 0)}),
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("guider", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("editor", "LATENT")}},
    ]
    nodes += decode_pair("sample", prefix)
    return {"nodes": nodes + vae_roundtrip()}


# The slowest toy workflows at 20 steps instead of 50 (100 for DDPM), for the test suite's run
# (``QUICK_TOY`` in a technique's workflows.py); the start steps keep their fraction of the schedule.
# The saved pictures are checked at these settings.
QUICK_TOY_STEPS = 20
QUICK_TOY_DDIM = {"InvertEditDDIMInvert": {"steps": QUICK_TOY_STEPS}, "KSamplerAdvanced": {"steps": QUICK_TOY_STEPS}}
