"""The fresh noises of an inversion-free flow editor (FlowEdit, FlowAlign): drawn once per run, at its start,
from the run's seed on the CPU (as the host draws its own noise), then moved to the device once, so that no step
draws or waits. Pure: torch only."""
from __future__ import annotations

import torch


def draw_noises(count: int, like: torch.Tensor, seed: int, packed: bool) -> torch.Tensor:
    """``count`` standard normal tensors shaped like ``like`` (``[count, *like.shape]``) from a CPU
    generator seeded ``seed``, in ``like``'s device and dtype. ``packed``: drawn in Flux's token
    layout (``[B, H/2 * W/2, 4C]``, diffusers' ``_pack_latents``) and unpacked, as the authors' Flux
    code draws them. Unpacked, the draws are what ``torch.manual_seed(seed)`` then ``count`` calls of
    ``torch.randn_like(like)`` give on the CPU (the authors' SD3 code)."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    b, c, h, w = like.shape[0], like.shape[1], like.shape[-2], like.shape[-1]   # a frame axis of 1 (Qwen-Image) between
    out = []
    for _ in range(count):
        if packed:
            n = torch.randn((b, (h // 2) * (w // 2), c * 4), generator=generator, dtype=torch.float32)
            n = n.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
        else:   # the latent's own shape: Qwen-Image's frame axis of 1 draws what (b, c, h, w) drew; a clip (Wan) all
            n = torch.randn(tuple(like.shape), generator=generator, dtype=torch.float32)   # its frames
        out.append(n.view(like.shape))
    return torch.stack(out).to(like.device, like.dtype)   # sampling-path-ok: once per run, before its first step
