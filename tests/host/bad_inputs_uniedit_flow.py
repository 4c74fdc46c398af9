"""Bad inputs of UniEdit-Flow (issue 84: ``InvertEditUniInv``, ``InvertEditUniEditFlow``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. A sampler other than Euler, a run on sigmas
other than the inversion's (another step count, or the whole schedule where the inversion stopped early), alpha out
of range or inverting no step, a non-flow model, Flux with a negative, SD3 with a guidance scale and no negative, an
empty latent, an unknown mask."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"


def _latent(value: float | None = None) -> dict:
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    return {"samples": latent if value is None else torch.full_like(latent, value)}


def _encode(k, text: str, family: str = "flux-dev") -> list:
    return call(k.host, "CLIPTextEncode", clip=k.tiny(family)[1], text=text)[0]


def _invert(k, family: str = "flux-dev", **change):
    args = dict(model=k.tiny(family)[0], latent=_latent(), positive=_encode(k, "", family), steps=6,
                scheduler="simple", guidance=1.0, alpha=0.6, zero_initial=False)
    args.update(change)
    return call(k.host, "InvertEditUniInv", **args)


def _guider(k, family: str = "flux-dev", **change):
    args = dict(model=k.tiny(family)[0], source=_encode(k, SOURCE, family), target=_encode(k, TARGET, family),
                omega=5.0, guidance=1.0, mask="mean")
    args.update(change)
    return call(k.host, "InvertEditUniEditFlow", **args)[0]


def _edit(k, sampler: str = "euler", sigmas=None, steps: int | None = None, latent: dict | None = None):
    _, noise, inverted = k.once("uniedit-inv", lambda: _invert(k))
    if steps is not None:
        sigmas = call(k.host, "BasicScheduler", model=k.tiny("flux-dev")[0], scheduler="simple", steps=steps,
                      denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=_guider(k),
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=inverted if sigmas is None else sigmas, latent_image=_latent() if latent is None else latent)


UNIEDIT_CASES = [
    ("uniedit-sampler-not-euler", lambda k: _edit(k, sampler="dpmpp_2m"),
     r"UniEdit-Flow: sampler 'dpmpp_2m' is not UniEdit-Flow's step; Uni-Edit integrates its edit with Euler steps"),
    ("uniedit-steps-not-the-inversions", lambda k: _edit(k, steps=4),
     r"UniEdit-Flow: the run's sigmas \(4 steps, from 1\) are not those Uni-Inv inverted on \(3 steps, from "
     r"[0-9.]+\); connect Uni-Inv's SIGMAS output"),
    ("uniedit-whole-schedule-after-an-early-stop", lambda k: _edit(k, steps=6),
     r"UniEdit-Flow: the run's sigmas \(6 steps, from 1\) are not those Uni-Inv inverted on \(3 steps"),
    ("uniedit-empty-latent", lambda k: _edit(k, latent=_latent(0.0)),
     r"UniEdit-Flow: the latent is empty \(all zeros\); UniEdit-Flow edits an image"),
    ("uniinv-alpha-above-1", lambda k: _invert(k, alpha=1.5),
     r"Uni-Inv: input 'alpha' is 1.5; give 0.01 to 1 \(default 0.6\)"),
    ("uniinv-alpha-no-step", lambda k: _invert(k, alpha=0.1),
     r"Uni-Inv: alpha 0.1 of 6 steps inverts floor\(0.1 x 6\) = 0 steps; raise alpha or the steps"),
    ("uniinv-non-flow-model", lambda k: call(k.host, "InvertEditUniInv", model=k.model, latent=k.src, positive=k.pos,
                                             steps=6, scheduler="simple", guidance=1.0, alpha=0.6, zero_initial=False),
     r"Uni-Inv: input 'model' is SD15 \(UNetModel, [A-Za-z]+ sampling\); this node edits with rectified-flow transformers"),
    ("uniedit-non-flow-model", lambda k: call(k.host, "InvertEditUniEditFlow", model=k.model, source=k.pos,
                                              target=k.pos, omega=5.0, guidance=1.0, mask="mean"),
     r"UniEdit-Flow: input 'model' is SD15 \(UNetModel, [A-Za-z]+ sampling\); this node edits with rectified-flow"),
    ("uniedit-flux-negative", lambda k: _guider(k, negative=_encode(k, "")),
     r"UniEdit-Flow: input 'negative' is connected, but Flux takes no negative prompt"),
    ("uniedit-sd3-guidance-without-negative", lambda k: _guider(k, "sd3", guidance=3.5),
     r"UniEdit-Flow: guidance is 3.5, but without a negative prompt this model runs without classifier-free "
     r"guidance"),
    ("uniedit-unknown-mask", lambda k: _guider(k, mask="max"),
     r"UniEdit-Flow: input 'mask' is 'max'"),
    ("uniedit-omega-negative", lambda k: _guider(k, omega=-1.0),
     r"UniEdit-Flow: input 'omega' is -1; give 0 to 100 \(default 5\)"),
]
