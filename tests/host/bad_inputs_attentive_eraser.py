"""Bad inputs of Attentive Eraser (issue 85, object removal: ``InvertEditAttentiveEraser``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. An empty mask, a mask over the whole
image, a batch of masks, an even blur, an inversion made with another model or by another method, layer and step
ranges that edit nothing, and runs on other steps, from a later step, with another sampler or with added noise.
The tiny SD1 model, its 4-step DDIM inversion of an 8x8 latent (64x64 px)."""
from __future__ import annotations

import torch

from workshop.headless.calls import call


def _box(size: int = 64) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, 8:24, 8:24] = 1.0
    return mask


def _eraser(k, mask=None, inversion=None, model=None, **kw):
    args = dict(removal_scale=9.0, ss_steps=9, ss_scale=0.3, start_step=0, end_step=-1, start_layer=-1, end_layer=-1,
                mask_blur=7)
    args.update(kw)
    return call(k.host, "InvertEditAttentiveEraser", model=k.model if model is None else model, conditioning=k.neg,
                inversion=k.inv if inversion is None else inversion, mask=_box() if mask is None else mask, **args)[0]


def _sample(k, sigmas=None, sampler: str = "ddim", noise=None, latent=None):
    noise = call(k.host, "DisableNoise")[0] if noise is None else noise
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=_eraser(k),
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=k.sigmas if sigmas is None else sigmas, latent_image=k.lat if latent is None else latent)


def _other_inversion(k):
    return call(k.host, "InvertEditDDIMInvert", **k.invert_args(model=k.other))[0]


def _later_start(k):
    point = k.model.model.process_latent_out(k.inv.trajectory[1].clone())
    return _sample(k, sigmas=k.sigmas[1:], latent={"samples": point})


ATTENTIVE_ERASER_CASES = [
    ("attentive-eraser-empty-mask", lambda k: _eraser(k, mask=torch.zeros(1, 64, 64)),
     r"Attentive Eraser: input 'mask' is empty \(all 0\), so there is nothing to remove"),
    ("attentive-eraser-mask-covers-the-whole-image", lambda k: _eraser(k, mask=torch.ones(1, 64, 64)),
     r"Attentive Eraser: input 'mask' covers the whole image .*nothing would remain to fill the region from"),
    ("attentive-eraser-mask-dilated-over-the-whole-image",
     lambda k: _eraser(k, mask=torch.ones(1, 64, 64).index_fill_(2, torch.tensor([0]), 0.0)),
     r"Attentive Eraser: input 'mask' covers the whole image \(after the code's blur and threshold, every latent cell\)"),
    ("attentive-eraser-batch-of-masks", lambda k: _eraser(k, mask=_box().repeat(2, 1, 1)),
     r"Attentive Eraser: input 'mask' is a batch of 2 masks; connect one"),
    ("attentive-eraser-even-blur", lambda k: _eraser(k, mask_blur=6),
     r"Attentive Eraser: input 'mask_blur' is 6; give an odd number of taps \(code: 7\), or 0"),
    ("attentive-eraser-inversion-of-another-model", lambda k: _eraser(k, inversion=_other_inversion(k)),
     r"Attentive Eraser: input 'model' is not the model the inversion was made with"),
    ("attentive-eraser-edict-inversion", lambda k: _eraser(k, inversion=k.edict()[0]),
     r"Attentive Eraser: input 'inversion' is a .*Attentive Eraser takes only these inversions: ddim"),
    ("attentive-eraser-not-an-inversion", lambda k: _eraser(k, inversion=k.lat),
     r"Attentive Eraser: input 'inversion' is a dict, not an INVERSION"),
    ("attentive-eraser-start-layer-past-the-last", lambda k: _eraser(k, start_layer=40),
     r"Attentive Eraser: input 'start_layer' is 40 but this UNet has \d+ self-attention layers"),
    ("attentive-eraser-end-layer-before-start", lambda k: _eraser(k, start_layer=2, end_layer=2),
     r"Attentive Eraser: input 'end_layer' \(2\) must be above start_layer \(2\)"),
    ("attentive-eraser-start-step-past-the-run", lambda k: _eraser(k, start_step=4),
     r"Attentive Eraser: start_step \(4\) is not before end_step \(4\) and the run's 4 steps; AAS would never act"),
    ("attentive-eraser-nan-scale", lambda k: _eraser(k, removal_scale=float("nan")),
     r"Attentive Eraser: .*removal_scale"),
    ("attentive-eraser-run-on-other-steps",
     lambda k: _sample(k, sigmas=call(k.host, "BasicScheduler", model=k.model, scheduler="ddim_uniform", steps=3,
                                      denoise=1.0)[0]),
     r"Attentive Eraser: .*(steps|schedule)"),
    ("attentive-eraser-run-from-a-later-step", _later_start,
     r"Attentive Eraser: the run starts at step 1 of the inversion's schedule, not at its start \(0\)"),
    ("attentive-eraser-another-sampler", lambda k: _sample(k, sampler="dpmpp_2m"),
     r"Attentive Eraser: sampler 'dpmpp_2m' does not take the DDIM step the background is kept with; use ddim"),
    ("attentive-eraser-added-noise",
     lambda k: _sample(k, noise=call(k.host, "RandomNoise", noise_seed=0)[0]),
     r"Attentive Eraser: the sampler adds noise to the inverted latent"),
]
