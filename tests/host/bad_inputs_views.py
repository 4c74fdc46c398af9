"""Bad inputs of Cross-View Attention on the SD family (issue 83), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. A view set of one view, reference views out of range, repeated or not numbers, a self
weight out of 0..1, and a sampler run on a batch that is not the view set's views."""
from __future__ import annotations

import torch

from workshop.headless.calls import call


def _views(count: int = 4, size: int = 8) -> dict:
    return {"samples": torch.randn(count, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5.0}


def _cross_view(k, latent=None, **kw):
    args = dict(references=4, self_weight=0.6, mode="mean of references (GaussCtrl)", reference_views="")
    args.update(kw)
    return call(k.host, "InvertEditCrossViewAttention", model=k.model, latent=latent or _views(), **args)[0]


def _sampled_on(k, views: int):
    return call(k.host, "KSamplerAdvanced", model=_cross_view(k), add_noise="disable", noise_seed=0, steps=2, cfg=1.0,
                sampler_name="ddim", scheduler="ddim_uniform", positive=k.pos, negative=k.neg,
                latent_image=_views(views), start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")


VIEW_CASES = [
    ("cross-view-one-view", lambda k: _cross_view(k, _views(1)),
     r"Cross-View Attention: input 'latent' holds 1 view; connect 2 views or more"),
    ("cross-view-not-a-latent-of-views", lambda k: _cross_view(k, {"samples": torch.zeros(1, 4, 2, 8, 8)}),
     r"Cross-View Attention: input 'latent' has shape \(1, 4, 2, 8, 8\); connect a view set's LATENT"),
    ("cross-view-reference-out-of-range", lambda k: _cross_view(k, reference_views="0, 7"),
     r"Cross-View Attention: input 'reference_views' \('0, 7'\): view 7 is out of range for a set of 4 views"),
    ("cross-view-reference-twice", lambda k: _cross_view(k, reference_views="1, -3"),
     r"Cross-View Attention: input 'reference_views' \('1, -3'\): views 1, -3 name a view twice"),
    ("cross-view-reference-not-a-number", lambda k: _cross_view(k, reference_views="front"),
     r"Cross-View Attention: input 'reference_views' \('front'\): 'front' is not a view number"),
    ("cross-view-self-weight", lambda k: _cross_view(k, self_weight=1.5),
     r"Cross-View Attention: input 'self_weight' is 1.5; use 0 to 1 \(paper: 0.6\)"),
    ("cross-view-sampled-batch-not-the-views", lambda k: _sampled_on(k, 3),
     r"Cross-View Attention: the sampler runs a batch of 3 rows in 1 chunk\(s\), not the view set's 4 views"),
]
