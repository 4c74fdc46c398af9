"""Gradients through a host model loaded under inference mode (Null-Text Optimize)."""
from __future__ import annotations

import torch


def _same(weight: torch.Tensor) -> torch.Tensor:
    return weight


def with_weight_copies(model):
    """A clone whose UNet layers copy their weights at each forward, so that gradients can flow
    through weights that are inference tensors; the model itself when they are not."""
    unet = model.model.diffusion_model
    if not any(p.is_inference() for p in unet.parameters()):
        return model
    m = model.clone()
    for name, module in unet.named_modules():
        if hasattr(module, "weight_function"):
            for kind in ("weight", "bias"):   # norms save their bias for backward too
                if getattr(module, kind, None) is not None:
                    m.add_weight_wrapper(f"diffusion_model.{name}.{kind}", _same)
    return m
