"""Calling single ComfyUI nodes (stock and ours) the way the executor does: for tests and benchmarks."""
from __future__ import annotations

import torch


def call(host, class_type: str, **inputs) -> tuple:
    """Run one node by its class_type under inference mode, as the executor would; returns its outputs."""
    cls = host.nodes.NODE_CLASS_MAPPINGS[class_type]
    with torch.inference_mode():
        if hasattr(cls, "define_schema"):   # V3 node
            out = cls.execute(**inputs)
            return tuple(out.args)
        obj = cls()
        return tuple(getattr(obj, cls.FUNCTION)(**inputs))


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def reconstruct(host, model, latent: dict, positive, negative=None, *, steps=50, scheduler="ddim_uniform",
                start_at_step=0, cfg=1.0, sampler_name="ddim", add_noise="disable", seed=0) -> torch.Tensor:
    """Stock KSamplerAdvanced from an inverted latent; returns the LATENT samples."""
    return call(host, "KSamplerAdvanced", model=model, add_noise=add_noise, noise_seed=seed, steps=steps, cfg=cfg,
                sampler_name=sampler_name, scheduler=scheduler, positive=positive,
                negative=negative if negative is not None else positive, latent_image=latent,
                start_at_step=start_at_step, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())
