"""Bad inputs of Self-Guidance (issue 85, ``InvertEditSelfGuidance``), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``, on the tiny SD1 model's 4-step DDIM inversion of an 8x8 latent (a 64 px picture). A word
not in the prompt, an empty word, a scale of 0 or less, an offset that takes the object's region off the picture, an
empty region, a mask of another size, an inversion made with another model or by another method, and runs on other
steps, with a second-order sampler or with noise added."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

PROMPT = "a red circle on a blue background"   # the kit's inversion's prompt


def _mask(empty: bool = False) -> torch.Tensor:
    mask = torch.zeros(1, 64, 64)
    if not empty:
        mask[:, 8:24, 8:24] = 1.0
    return mask


def _guide(k, **change):
    args = dict(model=k.model, clip=k.clip, prompt=PROMPT, negative=k.neg, inversion=k.inv, word="circle", dx=8.0,
                dy=0.0, scale=1.0, guidance=100.0, cfg=5.0, position_weight=1.0, size_weight=1.0,
                appearance_weight=0.5, shape_weight=0.5, moved_shape_weight=0.0, keep_words="", sharpness=10.0,
                guide_until=0.8)
    args.update(change)
    return call(k.host, "InvertEditSelfGuidance", **args)


def _sample(k, sigmas=None, sampler: str = "ddim", noise: bool = False):
    guider, latent, own = _guide(k, mask=_mask())
    noise_node = call(k.host, "RandomNoise", noise_seed=0)[0] if noise else call(k.host, "DisableNoise")[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise_node, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=own if sigmas is None else sigmas, latent_image=latent)


def _three_steps(k):
    return call(k.host, "BasicScheduler", model=k.model, scheduler="ddim_uniform", steps=3, denoise=1.0)[0]


SELF_GUIDANCE_CASES = [
    ("self-guidance-word-not-in-prompt", lambda k: _guide(k, word="triangle"),
     r"Self-Guidance: input 'word': 'triangle' is not a word of the prompt"),
    ("self-guidance-empty-word", lambda k: _guide(k, word="  "),
     r"Self-Guidance: input 'word' is empty; name the object to move, a word of the prompt \(a, red, circle"),
    ("self-guidance-keep-word-not-in-prompt", lambda k: _guide(k, keep_words="square"),
     r"Self-Guidance: input 'keep_words': 'square' is not a word of the prompt"),
    ("self-guidance-scale-0", lambda k: _guide(k, scale=0.0),
     r"Self-Guidance: input 'scale' is 0; give a factor above 0"),
    ("self-guidance-scale-negative", lambda k: _guide(k, scale=-1.0),
     r"Self-Guidance: input 'scale' is -1; give a factor above 0"),
    ("self-guidance-offset-off-the-picture", lambda k: _guide(k, dx=60.0, mask=_mask()),
     r"Self-Guidance: inputs 'dx' 60, 'dy' 0 and 'scale' 1 take the region \(8-24 x 8-24 px\) to 68-84 x 8-24 px, "
     r"off the 64x64 picture; with scale 1 give dx from -8 to 40 and dy from -8 to 40"),
    ("self-guidance-word-moved-off-the-picture", lambda k: _guide(k, dx=80.0),   # no mask: the word's attention
     r"Self-Guidance: inputs 'dx' 80 and 'dy' 0 take the centre of input 'word''s object \(\d+, \d+ px, from its "
     r"attention\) to \(\d+, \d+\), off the 64x64 picture; give dx from -\d+ to \d+"),
    ("self-guidance-empty-region", lambda k: _guide(k, mask=_mask(empty=True)),
     r"Self-Guidance: input 'mask' marks no region"),
    ("self-guidance-mask-of-another-size", lambda k: _guide(k, mask=torch.ones(1, 32, 32)),
     r"Self-Guidance: input 'mask' is 32x32 px, the inverted image 64x64"),
    ("self-guidance-negative-weight", lambda k: _guide(k, size_weight=-1.0),
     r"Self-Guidance: input 'size_weight' is -1; give 0 \(off\) or more"),
    ("self-guidance-inversion-of-another-model", lambda k: _guide(k, model=k.other),
     r"Self-Guidance: input 'model' is not the model the inversion was made with"),
    ("self-guidance-edict-inversion", lambda k: _guide(k, inversion=k.edict()[0]),
     r"Self-Guidance: input 'inversion' is a edict inversion \(from EDICT Invert\); Self-Guidance takes these inversions: "
     r"ddim \(from DDIM Invert\), fixed-point"),
    ("self-guidance-steps-mismatch", lambda k: _sample(k, sigmas=_three_steps(k)),
     r"Self-Guidance: the sampler runs 3 steps on sigmas from .*, but the inversion was made over 4 steps"),
    ("self-guidance-second-order-sampler", lambda k: _sample(k, sampler="heun"),
     r"Self-Guidance: sampler 'heun' evaluates the model between the inversion's steps"),
    ("self-guidance-noise-added", lambda k: _sample(k, noise=True),
     r"Self-Guidance: the sampler adds noise to the inverted latent; connect DisableNoise"),
]
