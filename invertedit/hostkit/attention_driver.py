"""The one driver of the pack's attention policies (``attention/policy.py``): it installs a policy
as attn1/attn2 replace patches on the UNet blocks asked for, and at every call of those layers
says where the call is (``Where``: layer, step, the batch's chunks and rows, heads, the host's
own attention) and hands the policy its per-run state (``run_state.py``)."""
from __future__ import annotations

from functools import partial

import torch

from ..attention.policy import AttentionPolicy, PolicyInputError, Where
from .attention_maps import host_attention, patch_maps
from .errors import NodeInputError
from .pair import pair_rows
from .patches import replace_attention
from .run_state import keep_run_state, run_state
from .steps import sampling_step


class AttentionDriver:
    """attn1 or attn2 replace patch that runs ``policy``. A pair policy's call of target rows only
    (``TARGET_ONLY``: nothing to take from the source) is plain attention."""

    def __init__(self, policy: AttentionPolicy, cross: bool, node: str):
        self.policy, self.cross, self.node = policy, cross, node

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict) -> torch.Tensor:
        policy = self.policy
        if policy.pair:
            chunks, rows = pair_rows(q, extra_options, self.node)
            if rows == 1:
                return host_attention(q, k, v, extra_options)
        else:
            chunks = extra_options.get("cond_or_uncond", [0])
            rows = q.shape[0] // len(chunks)
        block = extra_options.get("block", ("", 0))
        where = Where(cross=self.cross, block=(block[0], block[1]), depth=extra_options.get("block_index", 0),
                      chunks=tuple(chunks), rows=rows, heads=extra_options["n_heads"],
                      latent_hw=tuple(extra_options["original_shape"][-2:]),
                      attend=partial(host_attention, extra_options=extra_options),
                      maps=partial(patch_maps, extra_options=extra_options, dtype=torch.float32),
                      clock=partial(sampling_step, extra_options))
        state = run_state(extra_options, policy, policy.make_state, self.node) if policy.keeps_state else None
        try:
            return policy.attention(q, k, v, where, state)
        except PolicyInputError as e:
            raise NodeInputError(self.node, str(e)) from None


def install_policy(model, policy: AttentionPolicy, blocks, node: str,
                   layers: tuple[str, ...] = ("attn1", "attn2")) -> None:
    """Run ``policy`` on the ``layers`` (attn1: self-attention, attn2: cross-attention) of the UNet
    ``blocks`` ((block, number) keys, ``layout.transformer_blocks``) of ``model``, a clone the
    caller patches; a policy with per-run state gets a fresh one every sampling run."""
    if policy.keeps_state:
        keep_run_state(model)
    drivers = {kind: AttentionDriver(policy, kind == "attn2", node) for kind in layers}
    for block, number in blocks:
        for layer, driver in drivers.items():
            replace_attention(model, driver, layer, block, number)
