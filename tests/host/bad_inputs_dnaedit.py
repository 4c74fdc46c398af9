"""Bad inputs of DNAEdit (issue 84, part DNAEdit: ``InvertEditDNAEditInvert``, ``InvertEditDNAEdit``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. A start step that leaves too few steps or
starts at pure noise, a schedule that does not descend, an mvg outside 0..1, another method's inversion, a Flux
edit given a negative, an SD3 edit with guidance and no negative, and runs on other sigmas, with a second-order
sampler or on another latent."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"


def _latent(size: int = 8) -> dict:
    return {"samples": torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(0))}


def _encode(k, text: str, family: str = "flux-dev") -> list:
    return call(k.host, "CLIPTextEncode", clip=k.tiny(family)[1], text=text)[0]


def _sigmas(k, family: str = "flux-dev", steps: int = 4):
    return call(k.host, "BasicScheduler", model=k.tiny(family)[0], scheduler="simple", steps=steps, denoise=1.0)[0]


def _invert(k, family: str = "flux-dev", sigmas=None, **kw):
    args = dict(start_step=1, guidance=1.0, seed=0, align_noise=True)
    args.update(kw)
    return call(k.host, "InvertEditDNAEditInvert", model=k.tiny(family)[0], latent=_latent(),
                positive=_encode(k, SOURCE, family), sigmas=_sigmas(k, family) if sigmas is None else sigmas, **args)


def _inverted(k, family: str = "flux-dev"):
    return k.once(("dnaedit-inversion", family), lambda: _invert(k, family))


def _edit(k, family: str = "flux-dev", inversion=None, **kw):
    args = dict(mvg=0.8, guidance=2.5)
    args.update(kw)
    inversion = _inverted(k, family)[0] if inversion is None else inversion
    return call(k.host, "InvertEditDNAEdit", model=k.tiny(family)[0], inversion=inversion,
                target=_encode(k, TARGET, family), **args)[0]


def _sample(k, sigmas=None, sampler: str = "euler", size: int = 8):
    inversion, noise, own = _inverted(k)
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=_edit(k),
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=own if sigmas is None else sigmas, latent_image=_latent(size))


def _flow_inversion(k):
    return call(k.host, "InvertEditFlowInvert", model=k.tiny("flux-dev")[0], latent=_latent(),
                positive=_encode(k, SOURCE), solver="euler", steps=4, scheduler="simple", guidance=1.0)[0]


DNAEDIT_CASES = [
    ("dnaedit-start-step-leaves-too-few", lambda k: _invert(k, start_step=3),
     r"DNAEdit Invert: start_step is 3 of the schedule's 4 steps, which leaves 1 to invert and edit; leave at least 2"),
    ("dnaedit-start-step-0-is-pure-noise", lambda k: _invert(k, start_step=0),
     r"DNAEdit Invert: start_step 0 starts the edit at sigma 1, pure noise: nothing of the image would be kept"),
    ("dnaedit-sigmas-not-descending", lambda k: _invert(k, sigmas=torch.tensor([1.0, 0.5, 0.7, 0.0])),
     r"DNAEdit Invert: input 'sigmas' must descend strictly from at most 1 towards 0"),
    ("dnaedit-mvg-above-1", lambda k: _edit(k, mvg=1.5),
     r"DNAEdit: input 'mvg' is 1.5; give 0 to 1 \(authors: 0.8\)"),
    ("dnaedit-another-methods-inversion", lambda k: _edit(k, inversion=_flow_inversion(k)),
     r"DNAEdit: input 'inversion' is a .*; DNAEdit takes only these inversions: dnaedit \(from DNAEdit Invert\)"),
    ("dnaedit-flux-with-negative", lambda k: _edit(k, negative=_encode(k, "")),
     r"DNAEdit: input 'negative' is connected, but Flux takes no negative prompt"),
    ("dnaedit-sd3-guidance-without-negative", lambda k: _edit(k, "sd3", guidance=3.5),
     r"DNAEdit: SD3 guides the target with classifier-free guidance: connect 'negative'"),
    ("dnaedit-run-on-other-sigmas", lambda k: _sample(k, sigmas=_sigmas(k, steps=3)),
     r"DNAEdit: the run's sigmas \(3 steps, from 1\) are not those DNAEdit Invert recorded \(3 steps, from 0\.\d+\); "
     r"connect DNAEdit Invert's SIGMAS output"),
    ("dnaedit-second-order-sampler", lambda k: _sample(k, sampler="heun"),
     r"DNAEdit: sampler 'heun' is not DNAEdit's step; DNAEdit integrates its edit with Euler steps"),
    ("dnaedit-run-on-another-latent", lambda k: _sample(k, size=16),
     r"DNAEdit Invert: the sampler's latent_image is \(1, 16, 16, 16\), but the inversion was made from a latent "
     r"\(1, 16, 8, 8\)"),
]
