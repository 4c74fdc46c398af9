"""Bad inputs of FTEdit (issue 84, part FTEdit: ``InvertEditFTEditInvert``, ``InvertEditFTEdit``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. A model FTEdit's control is not built for
(Qwen-Image), an averaging range that is no range, prompts of different token counts, an inversion of another solver, and
a pair sampled on other sigmas or as one row."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"


def _latent(rows: int = 1, family: str = "sd3") -> dict:
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)).repeat(rows, 1, 1, 1)
    return {"samples": latent.unsqueeze(2) if family == "qwen-image" else latent}


def _encode(k, text: str, family: str = "sd3") -> list:
    return call(k.host, "CLIPTextEncode", clip=k.tiny(family)[1], text=text)[0]


def _invert(k, family: str = "sd3", **kw):
    args = dict(steps=4, scheduler="normal", iterations=1, average_from=0, average_until=5)
    args.update(kw)
    return k.once(("ftedit-inversion", family, tuple(sorted(args.items()))), lambda: call(
        k.host, "InvertEditFTEditInvert", model=k.tiny(family)[0], latent=_latent(family=family),
        positive=_encode(k, SOURCE, family), **args))


def _edit(k, family: str = "sd3", inversion=None, target: str = TARGET):
    model, clip, _ = k.tiny(family)
    inversion = _invert(k, family)[0] if inversion is None else inversion
    return call(k.host, "InvertEditFTEdit", model=model, clip=clip, inversion=inversion, source_prompt=SOURCE,
                target_prompt=target, adaln_steps=1.0, attention_steps=0.15)


def _sample(k, rows: int = 2, steps: int | None = None):
    patched, pair, noise = _edit(k)
    sigmas = _invert(k)[2]
    if steps is not None:
        sigmas = call(k.host, "BasicScheduler", model=patched, scheduler="normal", steps=steps, denoise=1.0)[0]
        noise = call(k.host, "RandomNoise", noise_seed=0)[0]
    guider = call(k.host, "CFGGuider", model=patched, positive=pair, negative=_encode(k, ""), cfg=2.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image=_latent(rows))


def _flow_invert(k):
    return call(k.host, "InvertEditFlowInvert", model=k.tiny("sd3")[0], latent=_latent(), positive=_encode(k, SOURCE),
                solver="rf-solver", steps=4, scheduler="normal", guidance=1.0)[0]


FTEDIT_CASES = [
    ("ftedit-qwen-image-model", lambda k: _edit(k, "qwen-image", inversion=_invert(k, "qwen-image",
                                                                                 scheduler="simple")[0]),
     r"FTEdit: input 'model' is QwenImage; FTEdit's control is built for SD3/SD3.5 \(the authors' code\) and "
     r"Flux.1 \(a port\)"),
    ("ftedit-average-not-a-range", lambda k: _invert(k, average_from=3, average_until=1),
     r"FTEdit Invert: inputs 'average_from' 3 and 'average_until' 1 are not a range of iterations"),
    ("ftedit-prompts-of-two-lengths", lambda k: _edit(k, target=" ".join(["a yellow circle"] * 30)),
     r"FTEdit: the source prompt encodes to 77 text tokens and the target prompt to 154; FTEdit aligns them token by "
     r"token"),
    ("ftedit-inversion-of-another-solver", lambda k: _edit(k, inversion=_flow_invert(k)),
     r"FTEdit: input 'inversion' is .*rf-solver.*; FTEdit takes these inversions: ftedit \(from FTEdit Invert\), "
     r"flow-euler \(from Flow Invert\)"),
    ("ftedit-other-sigmas", lambda k: _sample(k, steps=6),
     r"FTEdit: the model is sampled on 6 steps that are not the inversion's \(4\)"),
    ("ftedit-one-row", lambda k: _sample(k, rows=1),
     r"FTEdit: the sampler's latent_image is \(1, 16, 8, 8\), but the inversion was made from a latent \(1, 16, 8, 8\); "
     r"connect the image's latent repeated 2 times"),
]
