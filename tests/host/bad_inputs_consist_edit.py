"""Bad inputs of ConsistEdit (issue 84, part ConsistEdit: ``InvertEditConsistEdit``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. A consistency strength outside 0..1 or not
finite, a mask threshold that cuts nothing, mask blocks not offered, edit words not in the source prompt or none, a connected mask with no
region, a model the authors do not define it on (Qwen-Image), and runs on one row or on other sigmas."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a red square on a green field"


def _latent(rows: int = 1) -> dict:
    return {"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)).repeat(rows, 1, 1, 1)}


def _inverted(k, family: str = "flux-dev"):
    def make():
        model, clip, _ = k.tiny(family)
        positive = call(k.host, "CLIPTextEncode", clip=clip, text=SOURCE)[0]
        return call(k.host, "InvertEditFlowInvert", model=model, latent=_latent(), positive=positive, solver="euler",
                    steps=3, scheduler="simple", guidance=1.0)[:3]
    return k.once(("consist-edit-inversion", family), make)


def _edit(k, family: str = "flux-dev", **kw):
    model, clip, _ = k.tiny(family)
    args = dict(source_prompt=SOURCE, target_prompt=TARGET, edit_words="circle", consistency_strength=0.1,
                mask_threshold=0.1, guidance=3.5)
    args.update(kw)
    return call(k.host, "InvertEditConsistEdit", model=model, clip=clip, inversion=_inverted(k, family)[0], **args)


def _sample(k, rows: int = 2, sigmas=None):
    patched, pair, noise, _ = _edit(k)
    own = _inverted(k)[2]
    guider = call(k.host, "BasicGuider", model=patched, conditioning=pair)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0],
                sigmas=own if sigmas is None else sigmas, latent_image=_latent(rows))


def _other_sigmas(k):
    return call(k.host, "BasicScheduler", model=k.tiny("flux-dev")[0], scheduler="simple", steps=4, denoise=1.0)[0]


CONSIST_EDIT_CASES = [
    ("consistedit-strength-above-one", lambda k: _edit(k, consistency_strength=1.5),
     r"ConsistEdit: input 'consistency_strength' is 1.5; give a fraction of the steps from 0 to 1"),
    ("consistedit-strength-nan", lambda k: _edit(k, consistency_strength=float("nan")),
     r"ConsistEdit: input 'consistency_strength' is nan; give a finite number"),
    ("consistedit-threshold-one", lambda k: _edit(k, mask_threshold=1.0),
     r"ConsistEdit: input 'mask_threshold' is 1: the attention map is normalised to 0..1, so the edit region would be "
     r"empty"),
    ("consistedit-word-not-in-prompt", lambda k: _edit(k, edit_words="hat"),
     r"ConsistEdit: input 'edit_words': 'hat' is not a word of the source prompt"),
    ("consistedit-no-words", lambda k: _edit(k, edit_words=" , "),
     r"ConsistEdit: input 'edit_words' is ' , '; name the edited object's word\(s\)"),
    ("consistedit-empty-mask", lambda k: _edit(k, mask=torch.zeros(1, 64, 64)),
     r"ConsistEdit: input 'mask' marks no region to edit"),
    ("consistedit-mask-blocks", lambda k: _edit(k, mask_blocks="last"),
     r"ConsistEdit: input 'mask_blocks' is 'last'; choose one of 'authors', 'all', 'double'"),
    ("consistedit-qwen-image", lambda k: _edit(k, family="qwen-image"),
     r"ConsistEdit: input 'model' is QwenImage; ConsistEdit is defined on SD3 and Flux.1"),
    ("consistedit-one-row", lambda k: _sample(k, rows=1),
     r"ConsistEdit: the sampler's latent_image is \(1, 16, 8, 8\), but the inversion was made from a latent "
     r"\(1, 16, 8, 8\); connect the image's latent repeated 2 times"),
    ("consistedit-other-sigmas", lambda k: _sample(k, sigmas=_other_sigmas(k)),
     r"ConsistEdit: the model is sampled on 4 steps that are not the inversion's \(3\)"),
]
