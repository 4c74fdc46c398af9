"""Bad inputs of DragDiffusion (issue 85: ``InvertEditDragDiffusionLoRA``, ``InvertEditDragDiffusion``), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. Points outside the image, no points,
points that are not pairs, an empty or half-connected mask pair, an inversion from another model or of another
method, a decoder level or start layer the UNet lacks, a flow model, and the LoRA's image batch."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

POINTS = "20,20 -> 30,24"   # on the kit's 64 x 64 px image (an 8 x 8 latent)


def _drag(k, model=None, inversion=None, **kw):
    args = dict(points=POINTS, n_pix_step=1, lr=0.01, lam=0.1, r_m=1, r_p=3, feature_idx=1, start_step=0,
                start_layer=0)
    args.update(kw)
    return call(k.host, "InvertEditDragDiffusion", model=k.model if model is None else model, positive=k.pos,
                inversion=k.inv if inversion is None else inversion, **args)


def _dot(x: int, y: int, size: int = 64) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, y - 1:y + 2, x - 1:x + 2] = 1.0
    return mask


def _lora(k, model=None, latent=None):
    return call(k.host, "InvertEditDragDiffusionLoRA", model=k.model if model is None else model, positive=k.pos,
                latent=k.src if latent is None else latent, steps=1, learning_rate=5e-4, rank=2, batch_size=1, seed=0)


DRAG_DIFFUSION_CASES = [
    ("drag-diffusion-point-outside", lambda k: _drag(k, points="20,20 -> 70,24"),
     r"DragDiffusion: input 'points' has the target point \(70, 24\) outside the 64x64 picture; give x from 0 to 63"),
    ("drag-diffusion-no-points", lambda k: _drag(k, points="  "),
     r"DragDiffusion: input 'points' is empty; write 'x,y -> x,y' per pair"),
    ("drag-diffusion-points-not-pairs", lambda k: _drag(k, points="20,20 30,24"),
     r"DragDiffusion: input 'points' has '20,20 30,24', which is not a point pair"),
    ("drag-diffusion-empty-mask-pair", lambda k: _drag(k, points="", handle_mask=torch.zeros(1, 64, 64),
                                                       target_mask=_dot(30, 24)),
     r"DragDiffusion: input 'handle_mask' marks no region \(no pixel above 0.5\); paint a dot"),
    ("drag-diffusion-half-a-mask-pair", lambda k: _drag(k, points="", handle_mask=_dot(20, 20)),
     r"DragDiffusion: input 'handle_mask' is connected without the other; connect both"),
    ("drag-diffusion-inversion-of-another-model", lambda k: _drag(k, model=k.other),
     r"DragDiffusion: input 'model' is not the model the inversion was made with"),
    ("drag-diffusion-inversion-of-another-method", lambda k: _drag(k, inversion=k.edict()[0]),
     r"DragDiffusion: input 'inversion' is a edict inversion \(from EDICT Invert\); DragDiffusion takes only these "
     r"inversions: ddim \(from DDIM Invert\)"),
    ("drag-diffusion-feature-level-absent", lambda k: _drag(k, feature_idx=3),
     r"DragDiffusion: input 'feature_idx' is 3, but this UNet's decoder can give levels 0 to 1"),
    ("drag-diffusion-start-layer-absent", lambda k: _drag(k, start_layer=50),
     r"DragDiffusion: input 'start_layer' is 50 but this UNet has \d+ self-attention layers"),
    ("drag-diffusion-negative-lr", lambda k: _drag(k, lr=-0.01),
     r"DragDiffusion: inputs 'lr' and 'lam' must be 0 or more"),
    ("drag-diffusion-flow-model", lambda k: _drag(k, model=k.tiny("flux-dev")[0]),
     r"DragDiffusion: input 'model' is .*this node supports Stable Diffusion UNet checkpoints"),
    ("drag-diffusion-lora-two-images", lambda k: _lora(k, latent={"samples": k.src["samples"].repeat(2, 1, 1, 1)}),
     r"DragDiffusion LoRA: input 'latent' holds 2 images; connect VAE Encode of the one image"),
    ("drag-diffusion-lora-flow-model", lambda k: _lora(k, model=k.tiny("flux-dev")[0]),
     r"DragDiffusion LoRA: input 'model' is .*this node supports Stable Diffusion UNet checkpoints"),
]
