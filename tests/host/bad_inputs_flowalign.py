"""Bad inputs of FlowAlign (issue 84, part FlowAlign), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. A Stable Diffusion model, a regularisation of 1 or more or NaN guidance, a prompt of
another family or with Kontext's reference image, a sampler that is not Euler, a run of one step, a schedule with a
step of no length, an empty or NaN latent, an SD latent."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

PROMPT = "a red circle on a blue background"
NAN = float("nan")


def _encode(k, family: str, text: str = PROMPT) -> list:
    return call(k.host, "CLIPTextEncode", clip=k.tiny(family)[1], text=text)[0]


def _align(k, family: str = "sd3", **change):
    args = dict(model=k.tiny(family)[0], source=_encode(k, family), target=_encode(k, family, "a yellow circle"),
                guidance=13.5, regularization=0.01)
    args.update(change)
    return call(k.host, "InvertEditFlowAlign", **args)[0]


def _run(k, guider, steps: int = 4, sampler: str = "euler", latent: torch.Tensor | None = None, sigmas=None):
    model = k.tiny("sd3")[0]
    if sigmas is None:
        sigmas = call(k.host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)) if latent is None else latent
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]


FLOWALIGN_CASES = [
    ("flowalign-sd-model", lambda k: _align(k, model=k.model, source=k.pos, target=k.pos),
     r"FlowAlign: input 'model' is SD15 \(UNetModel, .*\); this node edits with rectified-flow transformers"),
    ("flowalign-regularization-one", lambda k: _align(k, regularization=1.0),
     r"FlowAlign: regularization is 1; .* keep it in \[0, 1\) \(authors: 0.01\)"),
    ("flowalign-guidance-nan", lambda k: _align(k, guidance=NAN),
     r"FlowAlign: input 'guidance' is nan; give a finite number"),
    ("flowalign-prompt-of-another-family", lambda k: _align(k, source=_encode(k, "flux-dev")),
     r"FlowAlign: input 'source' is an embedding 64 wide; the model's cross-attention takes 4096. The prompt was "
     r"encoded for another model family"),
    ("flowalign-kontext-reference", lambda k: _align(k, "flux-dev", target=call(
        k.host, "ReferenceLatent", conditioning=_encode(k, "flux-dev"),
        latent={"samples": torch.randn(1, 16, 8, 8)})[0]),
     r"FlowAlign: input 'target' carries reference images .*connect the plain text prompt"),
    ("flowalign-sampler-not-euler", lambda k: _run(k, _align(k), sampler="dpmpp_2m"),
     r"FlowAlign: sampler 'dpmpp_2m' is not FlowAlign's step; .*connect KSamplerSelect with euler"),
    ("flowalign-one-step", lambda k: _run(k, _align(k), steps=1),
     r"FlowAlign: the run has 1 step; FlowAlign needs at least 2"),
    ("flowalign-repeated-sigma", lambda k: _run(k, _align(k), sigmas=torch.tensor([1.0, 0.5, 0.5, 0.0])),
     r"FlowAlign: input 'sigmas': the schedule has a step that does not go down in noise .*BasicScheduler"),
    ("flowalign-empty-latent", lambda k: _run(k, _align(k), latent=torch.zeros(1, 16, 8, 8)),
     r"FlowAlign: the latent is empty \(all zeros\); FlowAlign edits an image: connect VAE Encode"),
    ("flowalign-latent-nan", lambda k: _run(k, _align(k), latent=torch.full((1, 16, 8, 8), NAN)),
     r"FlowAlign: the sampler's latent_image has NaN or infinite values; connect VAE Encode"),
    ("flowalign-sd-latent", lambda k: _run(k, _align(k), latent=torch.randn(1, 4, 8, 8)),
     r"FlowAlign: input 'latent_image' has 4 channels; this model \(SD3\) works on latents of 16"),
]
