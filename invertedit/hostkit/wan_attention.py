"""The driver of attention policies on Wan 2.x (issue 82): the counterpart of ``dit_attention.py`` for a transformer
whose blocks attend twice, not jointly. Each ``WanAttentionBlock`` runs a self-attention over the clip's tokens
(frames x rows x columns of 2 x 2 patches, in that order) and then a cross-attention from those tokens to the text
(UMT5's 512 tokens, padding included). The policy is handed the calls of the kinds it asks for (``"self"``,
``"cross"``), their queries, keys and values ``[batch, heads, tokens, dim]`` (the rotary embedding applied to the
self-attention's) and a ``CrossWhere``; it returns ``[batch, tokens, heads * dim]``, as the host's attention does.

How it reaches the attention: the host calls a ``patches_replace["dit"][("double_block", i)]`` patch for every Wan
block with the block's inputs and ``transformer_options``; the host's attention functions hand themselves to
``transformer_options["optimized_attention_override"]`` where it is set (``comfy.ldm.modules.attention.wrap_attn``).
The block patch runs the block with an override bound to that block call, which tells the block's two calls apart
by their order (the host's ``WanAttentionBlock.forward``: ``self_attn`` then ``cross_attn``; a T2V block makes no
other). An override or a ``"dit"`` patch already there (another node's) is kept: ``attend`` goes through it. The
clip's latent frames and patch grid, which an attention call does not say, are read once per model call by an
APPLY_MODEL wrapper (``LAYOUT_KEY``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import comfy.patcher_extension
import torch

from ..attention.policy import AttentionPolicy, PolicyInputError, RunTime
from .errors import NodeInputError
from .family import model_family
from .patches import replace_dit_block, wrap_model_calls
from .run_state import keep_run_state, run_state
from .steps import call_time

LAYOUT_KEY = "invertedit_wan_layout"   # transformer_options: (latent frames, (patch rows, patch columns))
OVERRIDE = "optimized_attention_override"
KINDS = ("self", "cross")   # a Wan T2V block's attention calls, in the order it makes them


@dataclass(frozen=True)
class CrossWhere(RunTime):
    """Where an attention call of a Wan block is: the block, which of its two calls (``kind``: ``"self"`` over the
    clip's tokens, ``"cross"`` from them to the text), the batch's layout (``chunks``: 0 conditional, 1
    unconditional; ``rows`` a chunk), the heads, the clip's latent ``frames`` and patch ``grid`` (its tokens are
    frames x rows x columns, frame-major), the text's token count (``text``: the cross-attention's keys), the host's
    attention (``attend(q, k, v, mask=None)`` of ``[batch, heads, tokens, dim]``, out ``[batch, tokens, heads *
    dim]``) and the run's time (``time``: the current sigma and the run's sigmas), read when asked for."""

    kind: str
    block: tuple[str, int]
    chunks: tuple[int, ...]
    rows: int
    heads: int
    frames: int
    grid: tuple[int, int]
    text: int
    attend: Callable[..., torch.Tensor] = field(repr=False, compare=False)
    time: Callable[[], tuple[float, list[float]]] = field(repr=False, compare=False)


def _record_layout(patch: tuple[int, int, int], executor, x, t, c_concat=None, c_crossattn=None, control=None,
                   transformer_options={}, **kwargs):
    """APPLY_MODEL wrapper: the call's latent frames and patch grid, for its blocks' policies."""
    frames, rows, cols = (-(-x.shape[-3 + i] // patch[i]) for i in range(3))
    options = {**transformer_options, LAYOUT_KEY: (frames, (rows, cols))}
    return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)


def _host_attention(func, outer, heads, kwargs, q, k, v, mask=None):
    """The host's attention of ``[batch, heads, tokens, dim]`` inputs (through an override that was there before the
    pack's), ``[batch, tokens, heads * dim]`` out; ``mask``: an additive bias over ``[batch, heads, queries, keys]``."""
    if mask is not None:
        kwargs = {**kwargs, "mask": mask}
    if outer is not None:
        return outer(func, q, k, v, heads, skip_reshape=True, **kwargs)
    return func(q, k, v, heads, skip_reshape=True, **kwargs)


class WanDriver:
    """Runs ``policy`` on the attention calls of the ``kinds`` asked for; the others run as the host runs them."""

    def __init__(self, policy: AttentionPolicy, node: str, kinds: tuple[str, ...]):
        self.policy, self.node, self.kinds = policy, node, kinds

    def attention(self, kind: str, block, outer, options, func, q, k, v, heads, kwargs) -> torch.Tensor:
        host = partial(_host_attention, func, outer, heads, kwargs)
        b = q.shape[0]
        q, k, v = (t.view(b, t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
        if kind not in self.kinds:
            return host(q, k, v)
        frames, grid = options.get(LAYOUT_KEY, (None, None))
        if frames is None:
            raise NodeInputError(self.node, "the model ran without the pack's Wan layout wrapper; sample the MODEL "
                                            "this node outputs.")
        chunks = tuple(options.get("cond_or_uncond", [0]))
        where = CrossWhere(kind=kind, block=block, chunks=chunks, rows=b // max(len(chunks), 1), heads=heads,
                           frames=frames, grid=grid, text=k.shape[2], attend=host, time=partial(call_time, options))
        state = run_state(options, self.policy, self.policy.make_state, self.node) if self.policy.keeps_state else None
        try:
            return self.policy.attention(q, k, v, where, state)
        except PolicyInputError as e:
            raise NodeInputError(self.node, str(e)) from None


class _BlockCalls:
    """The override of one block call: its first attention call is the self-attention, its second the
    cross-attention (``KINDS``)."""

    def __init__(self, driver: WanDriver, block, outer, options):
        self.driver, self.block, self.outer, self.options, self.calls = driver, block, outer, options, 0

    def __call__(self, func, q, k, v, *args, **kwargs):
        heads = kwargs.pop("heads") if "heads" in kwargs else args[0]   # Wan passes it by name
        kind = KINDS[min(self.calls, len(KINDS) - 1)]
        self.calls += 1
        if self.calls > len(KINDS):
            raise NodeInputError(self.driver.node, "a Wan block made more than two attention calls (an I2V, S2V or "
                                                   "audio block?); this node edits Wan 2.1/2.2 text-to-video.")
        return self.driver.attention(kind, self.block, self.outer, self.options, func, q, k, v, heads, kwargs)


class WanBlockPatch:
    """A ``patches_replace["dit"]`` patch: runs its block (or the patch that was there) with an attention override
    bound to this block call."""

    def __init__(self, driver: WanDriver, block: tuple[str, int], previous=None):
        self.driver, self.block, self.previous = driver, block, previous

    def __call__(self, args: dict, extra: dict) -> dict:
        options = args["transformer_options"]
        override = _BlockCalls(self.driver, self.block, options.get(OVERRIDE), options)
        args = {**args, "transformer_options": {**options, OVERRIDE: override}}
        if self.previous is not None:
            return self.previous(args, extra)
        return extra["original_block"](args)


def install_wan_policy(model, policy: AttentionPolicy, blocks, node: str, kinds: tuple[str, ...] = ("cross",)) -> None:
    """Run ``policy`` on the attention calls of ``kinds`` of the Wan ``blocks`` (``family.dit_blocks``) of ``model``,
    a clone the caller patches; a policy with per-run state gets a fresh one every sampling run."""
    if policy.keeps_state:
        keep_run_state(model)
    if not model.get_wrappers(comfy.patcher_extension.WrappersMP.APPLY_MODEL, LAYOUT_KEY):
        wrap_model_calls(model, LAYOUT_KEY, partial(_record_layout, tuple(model.model.diffusion_model.patch_size)))
    driver = WanDriver(policy, node, tuple(kinds))
    replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    known = set(model_family(model).dit_blocks)
    for block in blocks:
        if block not in known:
            raise ValueError(f"{block} is not a block of this Wan model")
        replace_dit_block(model, WanBlockPatch(driver, block, replace.get(block)), block)
