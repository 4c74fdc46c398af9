"""LEDITS++ inside the host (policy in ``guidance.py``): the per-concept cross-attention maps its
masks read, recorded at the mask resolution into the run's state of its policy."""
from __future__ import annotations

import math

import torch

from ...attention.maps import token_grid
from ...hostkit.attention_maps import host_attention, patch_maps
from ...hostkit.run_state import run_state
from .guidance import LeditsPolicy


class RecordConceptMaps:
    """attn2 replace patch at the mask resolution: plain attention, and for each concept chunk of
    the batch (``cond_or_uncond`` indexes the guider's conds) the sum of its tokens' maps, into
    the run's ``ConceptMaps`` of ``policy`` (the LEDITS++ policy that takes them)."""

    def __init__(self, policy: LeditsPolicy, tokens: dict[int, list[int]], factor: int):
        self.policy, self.tokens, self.factor = policy, tokens, factor

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        out = host_attention(q, k, v, extra_options)
        latent_hw = tuple(extra_options["original_shape"][-2:])
        h, w = token_grid(latent_hw, q.shape[1])
        if 2 ** round(math.log2(latent_hw[0] / h)) != self.factor:
            return out
        store = run_state(extra_options, self.policy, self.policy.make_state, node=self.policy.name)
        chunks = extra_options.get("cond_or_uncond", [0])
        rows = q.shape[0] // len(chunks)
        for chunk, index in enumerate(chunks):
            positions = self.tokens.get(index)
            if positions is None:
                continue
            probs = patch_maps(q[chunk * rows:(chunk + 1) * rows], k[chunk * rows:(chunk + 1) * rows], extra_options,
                               dtype=torch.float32)
            store.add(index, probs[..., positions].sum(-1).sum(1).reshape(rows, h, w), heads)
        return out
