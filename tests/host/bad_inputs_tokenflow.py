"""Bad inputs of TokenFlow (issue 82, part tokenflow), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. A clip of one frame, batch_size below 1 or above the frame count, an
inversion of another frame count than the latent sampled, a sampler that adds noise, a deterministic
sampler that does not take the DDIM step, and another schedule than the inversion's."""
from __future__ import annotations

import torch

from workshop.headless.calls import call


def _clip(frames: int = 3, size: int = 8) -> dict:
    return {"samples": torch.randn(frames, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5.0}


def _invert(k, frames: int = 3):
    return k.once(("tokenflow_inversion", frames), lambda: call(
        k.host, "InvertEditDDIMInvert", model=k.model, latent=_clip(frames), positive=k.pos, steps=4,
        scheduler="ddim_uniform", start_at_step=0, cfg=1.0))


def _tokenflow(k, frames: int = 3, batch_size: int = 2):
    return call(k.host, "InvertEditTokenFlow", model=k.model, inversion=_invert(k, frames)[0], source=k.pos,
                batch_size=batch_size, self_attention_injection=0.5, feature_injection=0.8, seed=1)[0]


def _sample(k, model, latent: dict, sampler: str = "ddim", steps: int = 4):
    return call(k.host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=steps, cfg=1.0,
                sampler_name=sampler, scheduler="ddim_uniform", positive=k.pos, negative=k.neg, latent_image=latent,
                start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")


TOKENFLOW_CASES = [
    ("tokenflow-one-frame", lambda k: _tokenflow(k, frames=1, batch_size=1),
     r"TokenFlow: input 'inversion' holds 1 frame; TokenFlow edits a clip: invert an IMAGE batch of 2 or more frames"),
    ("tokenflow-batch-size-0", lambda k: _tokenflow(k, batch_size=0),
     r"TokenFlow: input 'batch_size' is 0; the clip has 3 frames, so give 1 to 3 \(one keyframe per batch"),
    ("tokenflow-batch-size-above-frames", lambda k: _tokenflow(k, batch_size=4),
     r"TokenFlow: input 'batch_size' is 4; the clip has 3 frames, so give 1 to 3 \(one keyframe per batch of that "
     r"many frames; paper: 8\)"),
    ("tokenflow-inversion-of-other-frame-count", lambda k: _sample(k, _tokenflow(k), _invert(k, 2)[1]),
     r"TokenFlow: the inversion holds a clip of 3 frames, but the latent being sampled has 2 rows; sample the "
     r"inversion's own LATENT \(3 frames\), one row per frame"),
    ("tokenflow-sampler-adds-noise", lambda k: _sample(k, _tokenflow(k), _invert(k)[1], sampler="euler_ancestral"),
     r"TokenFlow: sampler 'euler_ancestral' adds fresh noise at every step and cannot retrace an inversion"),
    ("tokenflow-sampler-not-ddim", lambda k: _sample(k, _tokenflow(k), _invert(k)[1], sampler="dpmpp_2m"),
     r"TokenFlow: sampler 'dpmpp_2m' does not take the DDIM step TokenFlow samples with \(the source is read at the "
     r"run's own steps\); use ddim or euler"),
    ("tokenflow-other-schedule", lambda k: _sample(k, _tokenflow(k), _invert(k)[1], steps=5),
     r"TokenFlow: the sampler runs 5 steps on sigmas .*which are not the schedule this inversion was made on"),
]


def _rave(k, grid_size: int = 2):
    return call(k.host, "InvertEditRAVE", model=k.model, grid_size=grid_size, shuffle=True, seed=0)[0]


TOKENFLOW_CASES += [
    ("rave-frames-not-a-multiple-of-the-grid", lambda k: _sample(k, _rave(k), _invert(k)[1]),
     r"RAVE: the sampler runs 3 frames, not a multiple of grid_size\^2 = 4; give a grid_size whose square divides "
     r"the frame count"),
    ("rave-grid-size-0", lambda k: _rave(k, 0), r"RAVE: input 'grid_size' is 0; give 1 or more \(paper: 3"),
]
