"""Attention policies: what an attention layer computes, as one method from the call's queries,
keys and values and where the call is, to its output. A policy decides; the host kit's driver
(``hostkit/attention_driver.py``) installs it on the layers it asks for, says where each call is
(``Where``) and gives it its per-run state, the object its ``make_state()`` builds once per
sampling run. The editors of the pack are policies: Prompt-to-Prompt's controllers
(``attention/controllers.py``, each overriding one method as the authors' ``AttentionReplace``,
``AttentionRefine`` and ``AttentionReweight`` do), MasaCtrl's mutual self-attention
(``techniques/masactrl/mutual.py``) and Plug-and-Play's self-attention injection (``techniques/plug_and_play/injection.py``).

A source/target pair runs in one batch: every chunk of the call (``cond_or_uncond``: 0
conditional, 1 unconditional) holds the pair's rows, row 0 the source, row 1 the target (a clip
of F frames: 2F rows in blocks, rows 0..F-1 the source frames, row F + f the target of frame f). The
target takes rows of the source with one gather per tensor through an index made once per
layout and device (``source_index``), so that per attention call a policy adds no transfer and
no tensor built on the CPU.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

import torch

from .attention_lse import heads_attention_with_lse

S = TypeVar("S")
T = TypeVar("T")


class PolicyInputError(ValueError):
    """An input the policy cannot work with; the driver reports it under the node's name."""


def _once(where, name: str, read: Callable[[], T]) -> T:
    """``read()`` the first time a frozen ``where`` is asked for ``name``, its answer after. Not
    ``functools.cached_property``, whose lock ``torch.compile`` cannot trace (a graph break at every
    attention call of a model under the host's TorchCompileModel)."""
    memo = where.__dict__.get(name)
    if memo is None:
        memo = read()
        object.__setattr__(where, name, memo)
    return memo


@dataclass(frozen=True)
class Where:
    """Where an attention call is: its layer, the sampling step, the batch's layout and heads,
    and the host's own attention (``attend``) and maps (``maps``, float32) for the layer. The
    step is read when asked for (``clock``): reading it makes the CPU wait for the device once
    per UNet call, which a policy that never branches on it does not pay."""

    cross: bool                       # cross-attention (attn2), else self-attention (attn1)
    block: tuple[str, int]            # the UNet block, as the host names it: ("input", 4), ("middle", 0), ...
    depth: int                        # the transformer block's index inside the UNet block
    chunks: tuple[int, ...]           # the batch's chunks: 0 conditional, 1 unconditional
    rows: int                         # rows per chunk (2: the source/target pair; 2F: a clip's pair in blocks)
    heads: int
    latent_hw: tuple[int, int]        # the latent's height and width
    attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False, compare=False)
    maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False, compare=False)
    clock: Callable[[], tuple[int, int]] = field(repr=False, compare=False)   # (step, steps) of the run

    @property
    def _step_and_steps(self) -> tuple[int, int]:
        return _once(self, "_step_memo", self.clock)

    @property
    def step(self) -> int:
        """The sampling step (0-based)."""
        return self._step_and_steps[0]

    @property
    def steps(self) -> int:
        """The run's number of steps."""
        return self._step_and_steps[1]

    @property
    def layer(self) -> tuple[str, int, int]:
        """The (block, number, depth) of the attention layer."""
        return self.block[0], self.block[1], self.depth


class AttentionPolicy(ABC, Generic[S]):
    """What an attention layer computes. ``attention`` is called once per attention call of the
    layers the policy is installed on; ``state`` is the run's object from ``make_state`` (None
    where ``keeps_state`` is False). ``pair`` policies run on the (source, target) pair rows."""

    pair: bool = True
    #: whether it edits a joint call that holds reference images' tokens after the image's (``JointWhere.references``)
    reads_references: bool = False

    @property
    def keeps_state(self) -> bool:
        """Whether the policy keeps a per-run state (``make_state``)."""
        return False

    def make_state(self) -> S | None:
        """A fresh per-run state, asked for once per sampling run where ``keeps_state``."""
        return None

    @abstractmethod
    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: S | None) -> torch.Tensor:
        """The call's output ``[batch, tokens, heads * dim]``."""


def source_index(chunks: tuple[int, ...], rows: int, device: torch.device, kinds: tuple = (0,),
                 extra: tuple[int, ...] = ()) -> torch.Tensor:
    """The row index that gives every target row of the chunks of ``kinds`` its source row (the
    other rows themselves), followed by the rows ``extra``: a constant of the call's layout, made
    on ``device`` once (a memo: the layout and device decide it), so a policy takes rows with one
    ``index_select`` and no transfer per call. A chunk of ``rows`` = 2F holds a clip's pair in
    blocks: target row F + f takes source row f (F = 1: row 1 takes row 0); a chunk of one row (a
    call of target rows only) keeps it."""
    key = (tuple(chunks), rows, device, kinds, extra)
    index = _INDEX.get(key)
    if index is None:
        frames = max(rows // 2, 1)
        rows_of = [c * rows + (r % frames if kind in kinds else r) for c, kind in enumerate(chunks) for r in range(rows)]
        index = _INDEX[key] = torch.tensor(rows_of + list(extra), dtype=torch.long, device=device)
    return index


_INDEX: dict = {}


def rows_from_source(where: Where, *tensors: torch.Tensor, kinds: tuple = (0,)) -> tuple:
    """Copies of an attention call's ``tensors`` whose target rows are their source rows, in the
    chunks of ``kinds`` (conditional only for Prompt-to-Prompt, which edits only these; both for
    MasaCtrl): how a policy hands the target the source's maps (queries and keys) or its
    content (keys and values) in the one attention call of every row. One gather per tensor."""
    index = source_index(where.chunks, where.rows, tensors[0].device, kinds)
    return tuple(t.index_select(0, index) for t in tensors)


# ----------------------------------------------------------------------------- diffusion transformers

class RunTime:
    """The run's time of a frozen ``where`` that holds a ``time`` reader (the current sigma and the run's
    sigmas), read once per call and only when asked for: reading it makes the CPU wait for the device."""

    time: Callable[[], tuple[float, list[float]]]

    @property
    def _sigma_and_schedule(self) -> tuple[float, list[float]]:
        return _once(self, "_time_memo", self.time)

    @property
    def sigma(self) -> float:
        return self._sigma_and_schedule[0]

    @property
    def schedule(self) -> list[float]:
        """The run's sigmas, descending (the host's order)."""
        return self._sigma_and_schedule[1]

    @property
    def step(self) -> int:
        """The step of the run whose interval holds the current sigma (a solver's half step is in
        its step; the last sigma, 0, is past the last step)."""
        return schedule_position(self.schedule, self.sigma)[0]


@dataclass(frozen=True)
class JointWhere(RunTime):
    """Where a joint-attention call of a diffusion transformer (Flux.1's double- and single-stream
    blocks, SD3's MMDiT joint blocks) is. The call's queries, keys and values are ``[batch, heads,
    tokens, dim]`` (Flux's rotary embedding already applied), the ``text`` tokens first, then the
    image's ``grid`` of patches in rows; ``attend`` is the host's attention for them, which returns
    ``[batch, tokens, heads * dim]``, the layout a policy returns too, and takes an additive
    ``mask`` (broadcast over ``[batch, heads, queries, keys]``) for the logits; ``attend_lse`` is the same
attention with each query's log-sum-exp. The run's time is read when
    asked for (``time``: the current sigma and the run's schedule), as ``Where.clock``."""

    block: tuple[str, int]            # ("double_block", i) or ("single_block", i), as the host names DiT blocks
    chunks: tuple[int, ...]           # the batch's chunks: 0 conditional, 1 unconditional
    rows: int                         # rows per chunk
    heads: int
    text: int                         # text tokens, first in the sequence
    grid: tuple[int, int]             # the image's patches: rows and columns
    attend: Callable[..., torch.Tensor] = field(repr=False, compare=False)   # (q, k, v, mask=None)
    time: Callable[[], tuple[float, list[float]]] = field(repr=False, compare=False)   # (sigma, the run's sigmas)
    #: (q, k, v, mask=None) -> (output, log-sum-exp [batch, heads, tokens]) where the host's attention is not plain
    #: (another node's override, a mask of its own); None: it is plain, and ``plain_lse`` gives it
    attend_lse: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False, compare=False)
    #: the plain attention with its log-sum-exp, the output as the kernel gives it, ``[batch, heads, tokens,
    #: dim]`` (a policy that adds to it before the host's layout saves a transpose); (q, k, v, mask=None)
    plain_lse: Callable[..., tuple[torch.Tensor, torch.Tensor]] = field(default=heads_attention_with_lse, repr=False,
                                                                          compare=False)
    #: where a prompt of the call is padded to another's token count (Qwen-Image's unpadded text, a source/target
    #: pair of two lengths): an additive bias ``[batch, 1, 1, tokens]`` of the call's rows (their dtype), -inf on
    #: each row's padded text keys, which every attention of the call adds (``attend(..., mask=pad)``,
    #: ``attend_lse(..., mask=pad)`` or ``plain_lse(q, k, v, pad)``); None: no row is padded
    pad: torch.Tensor | None = field(default=None, repr=False, compare=False)
    #: the reference images' tokens after the image's (Flux.1 Kontext's, Qwen-Image-Edit's): 0 where there are none;
    #: only a policy that ``reads_references`` is given a call with some
    references: int = 0



def schedule_position(schedule: list[float], sigma: float) -> tuple[int, bool]:
    """Where ``sigma`` is on a descending ``schedule``: ``(i, False)`` at its point ``i`` (within
    ``1e-6 + 1e-4 sigma``, as ``torch.isclose``), ``(i, True)`` strictly inside the interval from
    point ``i`` down to ``i + 1`` (a second-order solver's midpoint evaluation)."""
    for i, s in enumerate(schedule):
        if abs(s - sigma) <= 1e-6 + 1e-4 * abs(sigma):
            return i, False
    for i in range(len(schedule) - 1):
        if schedule[i] > sigma > schedule[i + 1]:
            return i, True
    return len(schedule) - 1, False


def same_schedule(run: list[float], schedule: list[float]) -> bool:
    """Whether a run's sigmas are ``schedule`` (as many, each within ``1e-6 + 1e-4 sigma``): a patch
    that replays an inversion checks the run samples on its schedule."""
    return len(run) == len(schedule) and all(abs(a - b) <= 1e-6 + 1e-4 * abs(b) for a, b in zip(run, schedule))


def shared_key(where: JointWhere, inverting: bool) -> tuple[int, bool]:
    """(sampling step, half step) of a joint-attention call, as the flow editors that keep an
    inversion's attention tensors key them (RF-Solver-Edit, KV-Edit): an inversion's call at
    schedule point ``j`` (the low end of step ``j - 1``'s interval) is that step's, as a sampling
    call at point ``j`` is step ``j``'s."""
    step, half = schedule_position(where.schedule, where.sigma)
    return (step - 1 if inverting and not half else step), half
