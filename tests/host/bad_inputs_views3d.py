"""Bad inputs of a view set's 3D end (issue 83, part 3D), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. View Set: views of different sizes, a layout naming more or fewer views than the IMAGE
holds, angles of another count; Views to Hunyuan3D: views of another count or size than the View Set it is told
(the edited views not taken from that set), a name Hunyuan3D-2mv does not know, azimuths none of which is a quarter
view, a VIEWS input that is no View Set's, a CLIP vision that is not DINOv2 (SV3D's CLIP ViT)."""
from __future__ import annotations

import torch

from workshop.headless.calls import call


def _views(count: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand(count, size, size, 3, generator=torch.Generator().manual_seed(count))


def _view_set(k, views=None, layout="front, left, back, right", **kw):
    return call(k.host, "InvertEditViewSet", views=_views() if views is None else views, layout=layout, **kw)


def _clip_vision(k):
    return k.once("hunyuan3d_clip_vision", lambda: call(k.host, "InvertEditDemo3DModel", family="hunyuan3d2",
                                                         seed=0)[1])


def _to_3d(k, views=None, layout="front, left, back, right", given=None, **kw):
    images, record = _view_set(k, views, layout, **kw)
    return call(k.host, "InvertEditViewsToHunyuan3D", clip_vision=_clip_vision(k),
                views=images if given is None else given, view_set=record, crop="none")


VIEWS3D_CASES = [
    ("viewset-more-views-other-size", lambda k: _view_set(k, more_views=_views(1, 24)),
     r"View Set: input 'more_views' holds views of 24x24 px \(3 channels\), 'views' of 16x16 px \(3\); bring every "
     r"view to one size first"),
    ("viewset-layout-names-more-views", lambda k: _view_set(k, _views(3)),
     r"View Set: input 'layout' names 4 views \(front, left, back, right\) but the views hold 3; name each view once"),
    ("viewset-layout-names-fewer-views", lambda k: _view_set(k, _views(5)),
     r"View Set: input 'layout' names 4 views \(front, left, back, right\) but the views hold 5"),
    ("viewset-layout-name-twice", lambda k: _view_set(k, layout="front, left, front, right"),
     r"View Set: input 'layout': 'front, left, front, right' names front more than once; give each view its own "
     r"name"),
    ("viewset-one-view", lambda k: _view_set(k, _views(1), layout="front"),
     r"View Set: input 'views' holds 1 view; a view set has 2 views or more"),
    ("viewset-azimuths-other-count", lambda k: _view_set(k, azimuths="0, 90, 180"),
     r"View Set: input 'azimuths' gives 3 angles for 4 views; give one a view"),
    ("viewset-azimuth-not-a-number", lambda k: _view_set(k, azimuths="0, ninety, 180, 270"),
     r"View Set: input 'azimuths': 'ninety' is not a number of degrees"),
    ("views3d-wrong-count", lambda k: _to_3d(k, given=_views(8)),
     r"Views to Hunyuan3D: input 'views' holds 8 views of 16x16 px but 'view_set' is 4 views \(front, left, back, "
     r"right\), 16x16 px; connect the edited views of that set \(Image From Batch of the edit's rows V to 2V-1: "
     r"batch_index 4, length 4\)"),
    ("views3d-other-size", lambda k: _to_3d(k, given=_views(4, 32)),
     r"Views to Hunyuan3D: input 'views' holds 4 views of 32x32 px but 'view_set' is 4 views"),
    ("views3d-name-hunyuan3d-does-not-know", lambda k: _to_3d(k, layout="front, left, back, top"),
     r"Views to Hunyuan3D: input 'view_set': the layout names 'top', which Hunyuan3D-2mv does not take \(it "
     r"conditions on front, left, back and right\); name the views with these"),
    ("views3d-no-quarter-view", lambda k: _to_3d(k, _views(2), layout="a, b", azimuths="45, 315"),
     r"Views to Hunyuan3D: input 'view_set': no view's azimuth is within 30 degrees of front \(0\), left \(90\), "
     r"back \(180\) or right \(270\)"),
    ("views3d-clip-vision-not-dinov2", lambda k: call(k.host, "InvertEditViewsToHunyuan3D", clip_vision=call(
        k.host, "InvertEditDemo3DModel", family="sv3d", seed=0)[1], views=_views(), view_set=_view_set(k)[1], crop="none"),
     r"Views to Hunyuan3D: input 'clip_vision' is a CLIPVisionModelProjection, not the DINOv2 image encoder Hunyuan3D-2 "
     r"conditions on; connect the CLIP_VISION of Image Only Checkpoint Loader with the Hunyuan3D-2mv file"),
    ("views3d-not-a-view-set", lambda k: call(k.host, "InvertEditViewsToHunyuan3D", clip_vision=_clip_vision(k),
                                              views=_views(), view_set={"count": 4}, crop="none"),
     r"Views to Hunyuan3D: input 'view_set' is not a View Set's VIEWS record; connect View Set's VIEWS output"),
]
