"""Bad inputs of DragonDiffusion / DiffEditor (issue 85: ``InvertEditDragonDiffusionMove``,
``InvertEditDragonDiffusionDrag``), in ``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. An
empty mask, a scale of 0, an offset that takes the object off the picture, a mask of another size, points outside
the picture or none, an inversion made with another model or by another method, and runs on other steps, with
another sampler or with added noise. The tiny SD1 model, its 4-step DDIM inversion of an 8x8 latent (64x64 px)."""
from __future__ import annotations

import torch

from workshop.headless.calls import call


def _box(size: int = 64, x0: int = 16, y0: int = 16, side: int = 16) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, y0:y0 + side, x0:x0 + side] = 1.0
    return mask


_SETTINGS = dict(cfg=4.0, energy_scale=0.5, w_edit=4.0, w_content=6.0, sde_strength=0.4, seed=42, variant="DiffEditor")


def _move(k, mask=None, model=None, inversion=None, **kw):
    args = dict(_SETTINGS, dx=8.0, dy=0.0, scale=1.0, w_contrast=0.2, w_inpaint=0.8)
    args.update(kw)
    return call(k.host, "InvertEditDragonDiffusionMove", model=k.model if model is None else model, positive=k.pos,
                negative=k.neg, inversion=k.inv if inversion is None else inversion,
                mask=_box() if mask is None else mask, **args)


def _drag(k, points: str = "20,20 -> 30,24", **kw):
    args = dict(_SETTINGS, energy_scale=2.0, w_inpaint=0.2)
    args.update(kw)
    return call(k.host, "InvertEditDragonDiffusionDrag", model=k.model, positive=k.pos, negative=k.neg,
                inversion=k.inv, mask=_box(side=32), points=points, **args)


def _sample(k, sigmas=None, sampler: str = "ddim", noise=None):
    guider, latent, _ = _move(k)
    noise = call(k.host, "DisableNoise")[0] if noise is None else noise
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=k.sigmas if sigmas is None else sigmas, latent_image=latent)


def _other_sigmas(k):
    return call(k.host, "BasicScheduler", model=k.model, scheduler="ddim_uniform", steps=3, denoise=1.0)[0]


def _edict(k):
    return k.edict()[0]


DRAGON_DIFFUSION_CASES = [
    ("dragon-move-empty-mask", lambda k: _move(k, mask=torch.zeros(1, 64, 64)),
     r"DragonDiffusion Move: input 'mask' marks no region \(no pixel above 0\.5\); paint the object to move"),
    ("dragon-move-scale-0", lambda k: _move(k, scale=0.0),
     r"DragonDiffusion Move: input 'scale' is 0; give a factor above 0"),
    ("dragon-move-off-the-picture", lambda k: _move(k, dx=48.0),
     r"DragonDiffusion Move: inputs 'dx' 48, 'dy' 0 and 'scale' 1 take the region \(16-32 x 16-32 px\) to 64-80 x "
     r"16-32 px, off the 64x64 picture; with scale 1 give dx from -16 to 32 and dy from -16 to 32"),
    ("dragon-move-mask-of-another-size", lambda k: _move(k, mask=_box(size=48)),
     r"DragonDiffusion Move: input 'mask' is 48x48 px but the inverted image's latent is 8x8 \(an image of 64x64 px\)"),
    ("dragon-move-batch-of-masks", lambda k: _move(k, mask=_box().repeat(2, 1, 1)),
     r"DragonDiffusion Move: input 'mask' is a batch of 2 masks; connect one"),
    ("dragon-move-negative-weight", lambda k: _move(k, w_edit=-1.0),
     r"DragonDiffusion Move: input 'w_edit' is -1; give 0 or more \(code: 4.0\)"),
    ("dragon-move-inversion-of-another-model", lambda k: _move(k, model=k.other),
     r"DragonDiffusion Move: input 'model' is not the model the inversion was made with"),
    ("dragon-move-another-methods-inversion", lambda k: _move(k, inversion=_edict(k)),
     r"DragonDiffusion Move: input 'inversion' is a edict inversion .*DragonDiffusion Move takes only these "
     r"inversions: ddim \(from DDIM Invert\)"),
    ("dragon-move-run-on-other-steps", lambda k: _sample(k, sigmas=_other_sigmas(k)),
     r"DragonDiffusion Move: the sampler runs 3 steps on sigmas from .*, but the inversion retraced here was made "
     r"over 4 steps .*; connect DDIM Invert's SIGMAS"),
    ("dragon-move-ancestral-sampler", lambda k: _sample(k, sampler="euler_ancestral"),
     r"DragonDiffusion Move: sampler 'euler_ancestral' steps differently from DDIM"),
    ("dragon-move-added-noise", lambda k: _sample(k, noise=call(k.host, "RandomNoise", noise_seed=0)[0]),
     r"DragonDiffusion Move: the sampler adds noise to the start latent; connect DisableNoise"),
    ("dragon-drag-point-outside", lambda k: _drag(k, points="20,20 -> 70,24"),
     r"DragonDiffusion Drag: input 'points' has the target point \(70, 24\) outside the 64x64 picture; give x from 0 "
     r"to 63 and y from 0 to 63"),
    ("dragon-drag-no-points", lambda k: _drag(k, points="  "),
     r"DragonDiffusion Drag: input 'points' is empty; write 'x,y -> x,y' per pair"),
    ("dragon-drag-not-a-point-pair", lambda k: _drag(k, points="20,20 to 30,24"),
     r"DragonDiffusion Drag: input 'points' has '20,20 to 30,24', which is not a point pair"),
]
