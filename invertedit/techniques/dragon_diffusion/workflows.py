"""DragonDiffusion / DiffEditor's example workflows (``example_workflows/``), built from
``invertedit/workflows``' parts; ``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.checkpoint import (
    PHOTO_SOURCE,
    QUICK,
    SD15,
    SDXL,
    Family,
    checkpoint_front,
    setup_note,
)
from ...workflows.toy import (
    SOURCE_PROMPT,
    TOY_NOTE,
    decode_and_save,
    inversion_nodes,
    vae_roundtrip,
)

TOY_MOVE = (140.0, -40.0)   # the red circle (centre 150,170, radius 96) up and to the right, clear of the square
PHOTO_MOVE = (48.0, 0.0, 0.8)   # the girl of ComfyUI's example.png: 48 px to the right, 0.8 of her size
PHOTO_WORD = "girl"


def _move(mask: tuple, dx: float, dy: float, scale: float = 1.0) -> list[dict]:
    """DragonDiffusion Move of the inversion 'invert' with the prompt 'prompt' and the empty 'empty', the mask
    ``mask``, sampled by SamplerCustomAdvanced (DisableNoise, ddim, the inversion's SIGMAS)."""
    return [
        {"key": "move", "type": "InvertEditDragonDiffusionMove",
         "widgets": {"dx": dx, "dy": dy, "scale": scale, "cfg": 4.0, "energy_scale": 0.5, "w_edit": 4.0, "w_content": 6.0,
                     "w_contrast": 0.2, "w_inpaint": 0.8, "sde_strength": 0.4, "seed": 42, "variant": "DiffEditor"},
         "inputs": {"model": ("model", "MODEL"), "positive": ("prompt", 0), "negative": ("empty", 0),
                    "inversion": ("invert", 0), "mask": mask}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("move", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("move", "LATENT")}},
        {"key": "mask_image", "type": "MaskToImage", "inputs": {"mask": ("move", "MASK")}},
        {"key": "show_mask", "type": "PreviewImage", "inputs": {"images": ("mask_image", "IMAGE")},
         "title": "Where the object goes"},
    ]


HOW = ("**DragonDiffusion Move** (Mou et al., DragonDiffusion ICLR 2024 / DiffEditor CVPR 2024; the authors' released "
       "code and its defaults: cfg 4, energy 0.5 x1e3, w_edit 4, w_content 6, w_contrast 0.2, w_inpaint 0.8, regional "
       "SDE 0.4) pastes the object's inverted latent where it goes, then guides sampling with energies on the UNet "
       "decoder's features: the moved object like the original, the rest unchanged, the old place filled like the "
       "background; the decoder's self-attention reads the inversion's keys and values (the memory bank). Its GUIDER "
       "runs in the stock **SamplerCustomAdvanced** with **DisableNoise**, the *ddim* sampler and DDIM Invert's "
       "SIGMAS (the inversion's steps: the node refuses others). *dx*, *dy* in image pixels (right, down), *scale* "
       "resizes about the object's centre. No IP-Adapter: the code's image prompt (scale 0.1) is left out.")


def toy_move() -> dict:
    dx, dy = TOY_MOVE
    intro = ("# DragonDiffusion: move an object\n\n"
             "**DDIM Invert** (cfg 1, as the authors invert) gives the INVERSION whose latents are the memory bank. "
             "**Attention Store** makes the mask of 'circle' from the same inversion. " + HOW +
             f"\n\nHere the red circle goes {dx:g} px right and {-dy:g} px up. On this toy model the code's energy scale "
             "guides little (about a thousandth of the predicted noise): the circle is drawn at its new place, but its "
             "old place is not cleared (docs/techniques.md says more).\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] != "apply"] + [
        {"key": "empty", "type": "CLIPTextEncode", "widgets": {"text": ""}, "inputs": {"clip": ("model", "CLIP")},
         "title": "Negative prompt (empty)"},
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": SOURCE_PROMPT, "words": "circle", "start": 0.0, "end": 1.0, "threshold": 0.3},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "inversion": ("invert", 0),
                    "image": ("image", "IMAGE")}, "title": "Attention Store (the mask of 'circle')"},
    ] + _move(("store", "MASK"), dx, dy)
    nodes += decode_and_save("edit", "sample", "invertedit/dragon_diffusion_move", "Moved")
    return {"nodes": nodes + vae_roundtrip()}


def _checkpoint_move(family: Family) -> dict:
    dx, dy, scale = PHOTO_MOVE
    intro = (f"# {family.name}: DragonDiffusion, move an object\n\n"
             + setup_note(family, "**Source prompt**: describe your image (the code inverts and edits with this one "
                                  "prompt). **Attention Store**: its *prompt* the same caption, *words* the object "
                                  f"to move (here '{PHOTO_WORD}'); or paint the object in Load Image's mask editor and "
                                  "connect Load Image's MASK to the move's *mask* instead.") +
             "\n**DDIM Invert** (50 steps, cfg 1) gives the INVERSION whose latents are the memory bank; **Attention "
             "Store** reads the word's mask on it. " + HOW +
             f"\n\nHere the {PHOTO_WORD} goes {dx:g} px right at {scale:g} of her size; the node refuses a move that "
             "takes the object off the picture and says which dx and dy fit."
             + ("\n\nThe authors use SD1.5; on SDXL the same decoder features are read (the first decoder outputs at "
                "half and at the full latent size), a choice of ours, untested by the authors." if family is SDXL else ""))
    nodes = checkpoint_front(family, intro) + [
        {"key": "store", "type": "InvertEditAttentionStore",
         "widgets": {"prompt": PHOTO_SOURCE, "words": PHOTO_WORD, "start": 0.0, "end": 1.0, "threshold": 0.3},
         "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "inversion": ("invert", 0),
                    "image": ("resize", "IMAGE")}, "title": f"Attention Store (the mask of '{PHOTO_WORD}')"},
    ] + _move(("store", "MASK"), dx, dy, scale)
    nodes += decode_and_save("edit", "sample", f"invertedit/{family.name.lower().replace('.', '')}_dragon_diffusion_move",
                             "Moved")
    return {"nodes": nodes}


def sd15_move() -> dict:
    return _checkpoint_move(SD15)


def sdxl_move() -> dict:
    return _checkpoint_move(SDXL)


WORKFLOWS = {"Toy - DragonDiffusion move": toy_move, "SD1.5 - DragonDiffusion move": sd15_move,
             "SDXL - DragonDiffusion move": sdxl_move}
# on the Toy World Model: the circle's mask; SD1.5 moves it as the toy workflow does, SDXL (whose template also runs
# on the Demo Model's 128 px SDXL layout, random weights: a mask anywhere) shrinks it in place
_TOY_STORE = {"Source prompt": {"value": SOURCE_PROMPT},
              "InvertEditAttentionStore": {"prompt": SOURCE_PROMPT, "words": "circle"}}
CHECKPOINT = {
    "SD1.5 - DragonDiffusion move": (
        {**_TOY_STORE, "InvertEditDragonDiffusionMove": {"dx": TOY_MOVE[0], "dy": TOY_MOVE[1], "scale": 1.0}},
        {"InvertEditDDIMInvert": {"steps": QUICK}}),
    "SDXL - DragonDiffusion move": (
        {**_TOY_STORE, "InvertEditDragonDiffusionMove": {"dx": 0.0, "dy": 0.0, "scale": 0.75}},
        {"InvertEditDDIMInvert": {"steps": QUICK}}),
}
QUICK_TOY = {"Toy - DragonDiffusion move": {"InvertEditDDIMInvert": {"steps": 20}}}
