"""Views to 3D's host glue: the picked views through the host's CLIP vision encoder and Hunyuan3D-2's multi-view
conditioning (``hostkit/views_3d.py``: the stock CLIPVisionEncode and Hunyuan3Dv2ConditioningMultiView, called, not
copied)."""
from __future__ import annotations

import torch

from ...hostkit import views_3d


def hunyuan3d_conditioning(clip_vision, images: torch.Tensor, picked: dict[str, int], crop: str) -> tuple:
    """(positive, negative) CONDITIONING of Hunyuan3D-2mv from the views ``picked`` (front / left / back / right ->
    row of ``images``)."""
    names = list(picked)
    outputs = views_3d.encode_views(clip_vision, images, [picked[n] for n in names], crop)
    return views_3d.multiview_conditioning(dict(zip(names, outputs)))
