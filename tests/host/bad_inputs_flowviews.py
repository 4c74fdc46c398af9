"""Bad inputs of Cross-View Attention on the flow transformers (issue 83, part flow views), in
``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit), message)``. A view set of one view, a sampled batch that
is not the view set's (the stock sampler's, FlowEdit's), a Wan model (a clip, not a view set), Qwen-Image's VAE
Encode of an IMAGE batch (one clip of frames, not one view a row), a reference view out of range."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

PROMPT = "a red circle on a blue background"


def _views(views: int = 3, family: str = "flux-dev") -> dict:
    shape = (views, 16, 1, 8, 8) if family == "qwen-image" else (views, 16, 8, 8)
    return {"samples": torch.randn(*shape, generator=torch.Generator().manual_seed(0))}


def _cross(k, family: str = "flux-dev", latent=None, **kw):
    args = dict(references=2, self_weight=0.6, mode="mean of references (GaussCtrl)", reference_views="")
    args.update(kw)
    return call(k.host, "InvertEditCrossViewAttention", model=k.tiny(family)[0],
                latent=_views(family=family) if latent is None else latent, **args)[0]


def _encode(k, text: str = PROMPT) -> list:
    return call(k.host, "CLIPTextEncode", clip=k.tiny("flux-dev")[1], text=text)[0]


def _run(k, guider, model, latent: dict):
    sigmas = call(k.host, "BasicScheduler", model=model, scheduler="simple", steps=2, denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas, latent_image=latent)


def _sampled(k, rows: int):
    m = _cross(k)
    return _run(k, call(k.host, "BasicGuider", model=m, conditioning=_encode(k))[0], m, _views(rows))


def _flow_edited(k, rows: int):
    m = _cross(k)
    guider = call(k.host, "InvertEditFlowEdit", model=m, source=_encode(k), target=_encode(k, "a yellow circle"),
                  source_guidance=1.5, target_guidance=5.5, n_max=2, n_min=0, n_avg=1)[0]
    return _run(k, guider, m, _views(rows))


FLOWVIEWS_CASES = [
    ("flowviews-one-view", lambda k: _cross(k, latent=_views(1)),
     r"Cross-View Attention: input 'latent' holds 1 view; connect 2 views or more"),
    ("flowviews-batch-not-the-views", lambda k: _sampled(k, 4),
     r"Cross-View Attention: the sampler runs a batch of 4 rows in 1 chunk\(s\), 4 a chunk: not the view set's 3 "
     r"views \(or a multiple"),
    ("flowviews-flowedit-batch-not-the-views", lambda k: _flow_edited(k, 2),
     r"Cross-View Attention: the sampler runs a batch of 4 rows in 2 chunk\(s\), 2 a chunk: not the view set's 3 "
     r"views"),
    ("flowviews-wan-model", lambda k: _cross(k, "wan21", latent={"samples": torch.randn(1, 16, 3, 8, 8)}),
     r"Cross-View Attention: input 'model' is WAN21_T2V \(WanModel\), a video model whose latent is one clip; a view "
     r"set is a batch of images"),
    ("flowviews-qwen-image-batch-encoded-as-a-clip",
     lambda k: _cross(k, "qwen-image", latent={"samples": torch.randn(1, 16, 4, 8, 8)}),
     r"Cross-View Attention: input 'latent' has shape \(1, 16, 4, 8, 8\): one clip of 4 frames .* encode each view "
     r"alone"),
    ("flowviews-reference-out-of-range", lambda k: _cross(k, reference_views="0, 5"),
     r"Cross-View Attention: input 'reference_views' \('0, 5'\): view 5 is out of range for a set of 3 views"),
]
