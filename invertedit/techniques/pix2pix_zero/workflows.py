"""pix2pix-zero's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...demo.worlds import COLOURS
from ...workflows.toy import (EDIT_CFG, SOURCE_PROMPT, SOURCE_WORD, STEPS, SWAP_AT, TARGET_WORD, TOY_NOTE,
                              decode_pair, inversion_nodes, vae_roundtrip)


def _recoloured(prompt: str, palettes: list[tuple[str, ...]]) -> str:
    """``prompt`` once per palette, its colour words (in order) replaced by the palette's: one per line."""
    words = prompt.split()
    slots = [i for i, w in enumerate(words) if w in COLOURS]
    lines = []
    for palette in palettes:
        line = list(words)
        for i, colour in zip(slots, palette):
            line[i] = colour
        lines.append(" ".join(line))
    return "\n".join(lines)


P2PZ_GUIDANCE = 5.0   # cross-attention guidance's step on the toy world (paper: 0.1; the intro says why)


def pix2pix_zero_edit() -> dict:
    # sentences with the swapped word in scenes of every other colour, and the same with the target's word
    others = [("blue", "green"), ("white", "black"), ("black", "blue"), ("green", "white"), ("blue", "black"),
              ("white", "green")]
    source = _recoloured(SOURCE_PROMPT, [(SOURCE_WORD, *o) for o in others])
    target = "\n".join(" ".join(TARGET_WORD if i == SWAP_AT else w for i, w in enumerate(line.split()))
                       for line in source.splitlines())
    intro = (
        "# pix2pix-zero: an edit direction with cross-attention guidance\n\n"
        "**Pix2Pix-Zero Invert** (Parmar et al.; paper defaults: lambdas 20, 5 rounds of 5 rolls) inverts the image "
        "with the predicted noise pulled towards Gaussian noise. **Edit Direction** averages the embeddings of "
        f"sentences with '{SOURCE_WORD}' and with '{TARGET_WORD}' (one per line; the paper uses about a thousand) and "
        "adds the difference to the caption's embedding. **Cross-Attention Guidance** is a GUIDER for the stock "
        "**SamplerCustomAdvanced**: the reconstruction and the edit are drawn side by side, and at every step the edit's "
        "latent takes a gradient step that keeps its cross-attention maps on the reconstruction's, so the layout "
        "stays while the colour changes. The paper's step size, 0.1 (for SD at 512 px), leaves the toy model's "
        f"layout free (the circle grows into a blob); here it is {P2PZ_GUIDANCE:g}: the circle keeps its place and "
        "shape (at 10 it also kept its colour). With a real checkpoint use 0.1.\n\n"
        "As in the authors' real-image script the negative prompt is the source caption (cfg 5): the reconstruction row "
        "then follows the inversion, and the edit is guided away from the caption. The saved batch holds the "
        "reconstruction and the edit.\n\n" + TOY_NOTE)
    nodes = [n for n in inversion_nodes(intro) if n["key"] not in ("invert", "apply")] + [
        {"key": "invert", "type": "InvertEditPix2PixZeroInvert",
         "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "start_at_step": 0, "cfg": 1.0, "lambda_auto_corr": 20.0,
                     "lambda_kl": 20.0, "reg_steps": 5, "auto_corr_rolls": 5, "seed": 0},
         "inputs": {"model": ("model", "MODEL"), "latent": ("encode", "LATENT"), "positive": ("prompt", 0)}},
        {"key": "direction", "type": "InvertEditEditDirection",
         "widgets": {"source_sentences": source, "target_sentences": target},
         "inputs": {"conditioning": ("prompt", 0), "clip": ("model", "CLIP")}},
        {"key": "guidance", "type": "InvertEditCrossAttentionGuidance", "widgets": {"cfg": EDIT_CFG, "guidance_amount": P2PZ_GUIDANCE},
         "inputs": {"model": ("model", "MODEL"), "positive": ("prompt", 0), "target": ("direction", 0),
                    "negative": ("prompt", 0), "latent": ("invert", "LATENT")}},
        {"key": "sampler", "type": "KSamplerSelect", "widgets": {"sampler_name": "ddim"}},
        {"key": "noise", "type": "DisableNoise"},
        {"key": "sample", "type": "SamplerCustomAdvanced",
         "inputs": {"noise": ("noise", "NOISE"), "guider": ("guidance", "GUIDER"), "sampler": ("sampler", "SAMPLER"),
                    "sigmas": ("invert", "SIGMAS"), "latent_image": ("guidance", "LATENT")}},
    ]
    nodes += decode_pair("sample", "invertedit/pix2pix_zero")
    return {"nodes": nodes + vae_roundtrip()}


# (the tests run it at its full 50 steps: at 20 its yellow circle was drawn 90 px from the red one's place)
WORKFLOWS = {"Toy - pix2pix-zero edit": pix2pix_zero_edit}
