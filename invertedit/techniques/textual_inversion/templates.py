"""Textual Inversion (Gal et al., "An Image is Worth One Word: Personalizing Text-to-Image
Generation using Textual Inversion", ICLR 2023).

A subject (or a style) shown in 3-5 images becomes a new word: the embedding vector(s) of a
placeholder token, optimised with the diffusion model and the text encoder frozen, so that prompts
naming the placeholder reconstruct the images. What the reference code does and this module
reproduces (diffusers' ``examples/textual_inversion/textual_inversion.py``, read, not copied):

- the placeholder's ``num_vectors`` vectors start as the initializer word's embedding (one token);
- each item of a batch is one of the images, its caption one of the templates below chosen at
  random with the placeholder in place of ``{}``, the image flipped left-right with probability
  0.5 (here: its latent, ``flip_rows``); the images are visited in shuffled epochs;
- the loss is the diffusion loss of ``dreambooth.step_loss`` without class rows; AdamW (weight decay
  1e-2) updates the placeholder's vectors only (the script restores every other row of the table
  after each step: AdamW acts element by element, so that is the same update).

The templates are the script's (its ``imagenet_templates_small`` and ``imagenet_style_templates_small``).
torch only: no host imports.
"""
from __future__ import annotations

import torch

OBJECT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)

STYLE_TEMPLATES: tuple[str, ...] = (
    "a painting in the style of {}",
    "a rendering in the style of {}",
    "a cropped painting in the style of {}",
    "the painting in the style of {}",
    "a clean painting in the style of {}",
    "a dirty painting in the style of {}",
    "a dark painting in the style of {}",
    "a picture in the style of {}",
    "a cool painting in the style of {}",
    "a close-up painting in the style of {}",
    "a bright painting in the style of {}",
    "a cropped painting in the style of {}",
    "a good painting in the style of {}",
    "a close-up painting in the style of {}",
    "a rendition in the style of {}",
    "a nice painting in the style of {}",
    "a small painting in the style of {}",
    "a weird painting in the style of {}",
    "a large painting in the style of {}",
)

TEMPLATES = {"object": OBJECT_TEMPLATES, "style": STYLE_TEMPLATES}
FLIP_P = 0.5   # the script's flip_p


def item_draws(count: int, templates: int, generator: torch.Generator,
               flip_p: float = FLIP_P) -> tuple[list[int], torch.Tensor]:
    """For ``count`` batch items: the template each is captioned with (uniform) and whether its
    image is flipped (probability ``flip_p``), drawn from ``generator`` in that order."""
    chosen = torch.randint(0, templates, (count,), generator=generator, device=generator.device).tolist()  # sampling-path-ok: a CPU generator, once per step
    flips = torch.rand(count, generator=generator, device=generator.device) < flip_p
    return chosen, flips


def flip_rows(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """``x`` with the rows where ``flips`` is True mirrored left-right (the last axis)."""
    return torch.where(flips.to(x.device).reshape(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
