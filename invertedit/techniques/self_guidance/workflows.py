"""Self-Guidance's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import PHOTO_SOURCE, QUICK, SD15, SDXL, Family, checkpoint_front, setup_note
from ...workflows.toy import SOURCE_PROMPT, TOY_NOTE, decode_and_save, inversion_nodes, vae_roundtrip
from . import NODE, ROW

TOY_MOVE = (140.0, -40.0)   # the red circle (centre 150,170) up and to the right, clear of the square (DragonDiffusion's)
TOY_GUIDANCE = 3000.0       # v on the toy world (the paper gives none for SD; docs/faithfulness.md)
TOY_WORD = "red circle"     # the object with its colour: the toy's colour words attend to their object too, and a kept
                            # word's shape held at the source holds the object in place
PHOTO_WORD = "girl"         # the object of the checkpoint templates' example.png ("a drawing of a girl in a pink dress")
PHOTO_MOVE = (64.0, 0.0)    # 64 px to the right

S = ROW.settings_of(NODE)


def _guidance(prompt: str, word: str, dx: float, dy: float, guidance: float, cfg: float) -> list[dict]:
    """Self-Guidance of the inversion 'invert' with the negative 'empty', sampled by SamplerCustomAdvanced
    (DisableNoise, ddim, the node's SIGMAS and LATENT)."""
    widgets = {"prompt": prompt, "word": word, "dx": dx, "dy": dy, "scale": 1.0, "guidance": guidance, "cfg": cfg,
               **{k: S[k] for k in ("position_weight", "size_weight", "appearance_weight", "shape_weight",
                                    "moved_shape_weight", "sharpness", "guide_until")}, "keep_words": ""}
    return [
        {"key": "guide", "type": NODE, "widgets": widgets,
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "negative": ("empty", 0),
                    "inversion": ("invert", 0)}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("guide", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("guide", "SIGMAS"), "latent_image": ("guide", "LATENT")}},
    ]


HOW = ("**Self-Guidance** (Epstein et al., NeurIPS 2023; no code was released, so the paper's definitions) guides "
       "the sampler with the model's own cross-attention: at every step it reads, on the inversion's latent of that "
       "step, the word's attention centroid and size, every other word's shape and every word's appearance (decoder "
       "features weighted by the shape), then pulls the edit's centroid to the source's moved by (dx, dy), its size to "
       "scale^2 times the source's, and the rest to the source's: eps = eps_uncond + cfg (eps_cond - eps_uncond) + "
       "v sigma_t grad g. Its GUIDER runs in the stock **SamplerCustomAdvanced** with **DisableNoise**, the *ddim* "
       "sampler and the node's SIGMAS and LATENT (the inversion's: the node refuses other steps). The node's *prompt* "
       "is the caption the image was inverted with; *word* names the object (a word of it). The paper gives no "
       "weights for Stable Diffusion: the defaults were set on the toy world (docs/faithfulness.md).")


def toy_move() -> dict:
    dx, dy = TOY_MOVE
    intro = ("# Self-Guidance: move an object\n\n"
             "**DDIM Invert** (cfg 1) gives the INVERSION whose latents are the source's trajectory. " + HOW +
             f"\n\nHere '{TOY_WORD}' goes {dx:g} px right and {-dy:g} px up, with v = {TOY_GUIDANCE:g}. Name the object with "
             f"its adjectives: a word left out is kept where it was, and 'red' attends to the circle too.\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] != "apply"] + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
    ] + _guidance(SOURCE_PROMPT, TOY_WORD, dx, dy, TOY_GUIDANCE, 5.0)
    nodes += decode_and_save("edit", "sample", "invertedit/self_guidance_move", "Moved")
    return {"nodes": nodes + vae_roundtrip()}


def _checkpoint_move(family: Family) -> dict:
    dx, dy = PHOTO_MOVE
    intro = (f"# {family.name}: Self-Guidance, move an object\n\n"
             + setup_note(family, "**Source prompt**: describe your image, and type the same caption in the "
                                  "Self-Guidance node's *prompt*; set its *word* to the object to move (a word of the "
                                  "caption). The node refuses a word not in the caption and a move that takes the "
                                  "object off the picture.") +
             "\n**DDIM Invert** (50 steps, cfg 1) gives the INVERSION. " + HOW +
             f"\n\nSet *dx*, *dy* (here {dx:g}, {dy:g}) and *scale*; raise *guidance* if the object does not move, "
             f"lower it if the picture breaks up."
             + ("\n\nThe paper used Imagen; on SDXL the maps are read at latent/4 (its down and up blocks there) and the "
                "features entering its last decoder block, as on SD1.5: our choice." if family is SDXL else ""))
    nodes = checkpoint_front(family, intro) + _guidance(PHOTO_SOURCE, PHOTO_WORD, dx, dy, S["guidance"], S["cfg"])
    nodes += decode_and_save("edit", "sample", f"invertedit/{family.name.lower().replace('.', '')}_self_guidance_move",
                             "Moved")
    return {"nodes": nodes}


def sd15_move() -> dict:
    return _checkpoint_move(SD15)


def sdxl_move() -> dict:
    return _checkpoint_move(SDXL)


WORKFLOWS = {"Toy - Self-Guidance move": toy_move, "SD1.5 - Self-Guidance move": sd15_move,
             "SDXL - Self-Guidance move": sdxl_move}
# on the Toy World Model (and the tiny random SDXL's 128 px picture): its caption and object, a move that stays on both
CHECKPOINT_MOVE = (32.0, -16.0)
_TOY = {NODE: {"prompt": SOURCE_PROMPT, "word": TOY_WORD, "dx": CHECKPOINT_MOVE[0], "dy": CHECKPOINT_MOVE[1],
               "guidance": TOY_GUIDANCE, "cfg": 5.0}}
CHECKPOINT = {name: (_TOY, {"InvertEditDDIMInvert": {"steps": QUICK}})
              for name in ("SD1.5 - Self-Guidance move", "SDXL - Self-Guidance move")}
QUICK_TOY = {"Toy - Self-Guidance move": {"InvertEditDDIMInvert": {"steps": QUICK}}}
