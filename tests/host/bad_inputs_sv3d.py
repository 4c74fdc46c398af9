"""Bad inputs on the SV3D orbit's path (issue 83, part SV3D), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. The SV3D part adds no node of its own (its workflow is the host's SV3D nodes into the
pack's view-set edit), so these are the mistakes of that workflow's wiring, refused by the nodes it reaches with a
message that says what to connect: an orbit of one view (SV3D_Conditioning's video_frames 1) into Cross-View Attention,
the 21-view orbit into View Set with its default four names, and Cross-View Attention armed with the whole orbit's
LATENT while the sampler runs a cut of it (Views to edit)."""
from __future__ import annotations

import importlib

import torch

from workshop.headless.calls import call

ORBIT = 21   # SV3D's views


def _orbit_latent(k, views: int) -> dict:
    """SV3D_Conditioning's LATENT of an orbit of ``views`` views on the tiny random SV3D (64 px)."""
    def make():
        sv3d = importlib.import_module(k.host.pack.__name__ + ".demo.tiny_sv3d")
        _, clip_vision, vae = sv3d.build_tiny_sv3d(0)
        image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
        return call(k.host, "SV3D_Conditioning", clip_vision=clip_vision, init_image=image, vae=vae, width=64,
                    height=64, video_frames=views, elevation=0.0)[2]
    return k.once(("sv3d_orbit", views), make)


def _cross_view(k, latent: dict):
    return call(k.host, "InvertEditCrossViewAttention", model=k.model, latent=latent, references=4, self_weight=0.6,
                mode="mean of references (GaussCtrl)", reference_views="")[0]


def _cut_sampled(k, views: int = 4):
    """Cross-View Attention armed with the whole orbit's LATENT, the sampler on its first ``views`` views."""
    cut = {"samples": _orbit_latent(k, ORBIT)["samples"][:views] + 1.0}
    return call(k.host, "KSamplerAdvanced", model=_cross_view(k, _orbit_latent(k, ORBIT)), add_noise="disable",
                noise_seed=0, steps=1, cfg=1.0, sampler_name="ddim", scheduler="ddim_uniform", positive=k.pos,
                negative=k.neg, latent_image=cut, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")


SV3D_CASES = [
    ("sv3d-orbit-of-one-view-into-cross-view", lambda k: _cross_view(k, _orbit_latent(k, 1)),
     r"Cross-View Attention: input 'latent' holds 1 view; connect 2 views or more .*SV3D's orbit"),
    ("sv3d-orbit-into-view-set-default-layout",
     lambda k: call(k.host, "InvertEditViewSet", views=torch.rand(ORBIT, 16, 16, 3), layout="front, left, back, right"),
     rf"View Set: input 'layout' names 4 views \(front, left, back, right\) but the views hold {ORBIT}"),
    ("sv3d-orbit-latent-sampled-on-a-cut", lambda k: _cut_sampled(k),
     rf"Cross-View Attention: the sampler runs a batch of 4 rows in 1 chunk\(s\), not the view set's {ORBIT} views"),
]
