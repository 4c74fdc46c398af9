"""FTEdit's invariance control (Xu et al., CVPR 2025, ``Pengchengpcx/FTEdit``,
``controller/attn_norm_ctrl_sd35.py``) as an attention policy on SD3's joint blocks: a source/target pair
whose target keeps the source's text features where the prompts agree ("AdaLN invariance") and, in the
first steps, attends with the source's values ("attention injection").

AdaLN invariance. The authors replace the forward of each joint block's ``norm1_context`` (the text
stream's adaptive layer norm, ``AdaLayerNormZero``): after ``norm(x) * (1 + scale) + shift``, the target
row's text tokens that the prompts' alignment maps to source tokens (Prompt-to-Prompt's refinement
mapper over CLIP's 77-token window and, separately, T5's tokens after it; ``alphas`` 1 there, 0 for the
target's new words) take the source row's modulated tokens (``base[:, mapper] * alphas + replace * (1 -
alphas)``), in the conditional rows, in the first ``int(N * ly_ratio)`` steps. That output feeds the text's
query, key and value projections alone (the residual and the MLP read the block's input), and those
projections (and SD3.5's per-head RMS norms of queries and keys) act token by token, so with ``alphas`` of 0
and 1 the same is exactly this: the target's text queries, keys and values at those tokens are the
source's at the mapped ones. The policy does that in the attention call the pack's DiT driver hands it.

Attention injection. Their ``P2P35_JointAttnProcessor2_0`` hands the conditional half of each joint
attention's values and keys (text and image tokens, after the AdaLN step) to ``SD3attentionreplace``, which
sets the target's values to the source's (the keys go through unchanged: its ``forward2`` edits its first
argument, the values) in the first ``int(N * attn_ratio)`` steps.

Blocks: theirs registers both on the first 37 joint blocks (``att_count < 37``) of SD3.5 Large's 38, all but
the last, whose text stream is "context pre-only" (its ``norm1_context`` is an ``AdaLayerNormContinuous``
their forward does not fit). Here: every joint block but the last, on any SD3 (SD3 Medium: 23 of 24).
Steps count model calls, one a step (``cur_step``), so ``step < int(N * ratio)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError, rows_from_source

#: the authors' real-image setting (README, ``edit_real_sd35.py``): ``--ly_ratio 1.0 --attn_ratio 0.15``
ADALN_RATIO = 1.0
ATTENTION_RATIO = 0.15


def controlled_steps(steps: int, ratio: float) -> int:
    """The steps the authors' controller acts in of ``steps``: the first ``int(steps * ratio)``
    (``num_self_replace``)."""
    return int(steps * ratio)


@dataclass
class InvarianceRun:
    """A run of ``Invariance``: its steps' limits (from the run's step count, once), and for each layout of
    a call's rows (chunks, rows, tokens, device) the gather that takes the target's text tokens from the source."""
    limits: tuple[int, int] | None = None
    layouts: dict = field(default_factory=dict)


class Invariance(AttentionPolicy[InvarianceRun]):
    """FTEdit's control of a source/target pair (row 0 the source, row 1 the target, in every chunk): in the
    conditional rows, the target's text queries, keys and values take the source's mapped tokens
    (``mapper``, ``alphas`` over the text sequence: ``attention/align.sequence_refine``) in the first
    ``adaln_ratio`` of the steps, and the target's values are the source's in the first ``attention_ratio``.

    The text tokens are taken with one gather a tensor over (row, token) pairs made once per layout (every
    other token its own), which costs a stock step's attention call two operations a tensor."""

    def __init__(self, mapper: torch.Tensor, alphas: torch.Tensor, adaln_ratio: float, attention_ratio: float):
        self.mapper, self.alphas = mapper, alphas
        self.adaln_ratio, self.attention_ratio = adaln_ratio, attention_ratio

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> InvarianceRun:
        return InvarianceRun()

    def _gather(self, where: JointWhere, state: InvarianceRun, batch: int, tokens: int, device: torch.device):
        """(rows, tokens) ``[batch, tokens]``: the row and token each row's token is taken from."""
        key = (where.chunks, where.rows, tokens, device)
        made = state.layouts.get(key)
        if made is None:
            if where.text != self.mapper.shape[0]:
                raise PolicyInputError(
                    f"the prompts were aligned over {self.mapper.shape[0]} text tokens, but the model runs on "
                    f"{where.text}; sample with this node's CONDITIONING (the same text encoders).")
            rows = torch.arange(batch, device=device)[:, None].repeat(1, tokens)
            taken = torch.arange(tokens, device=device)[None, :].repeat(batch, 1)
            aligned, mapper = self.alphas.to(device).bool(), self.mapper.to(device)
            for c, kind in enumerate(where.chunks):
                if kind == 0:   # the conditional chunk's target row takes the source row's aligned text tokens
                    target = c * where.rows + 1
                    rows[target, :where.text].masked_fill_(aligned, c * where.rows)
                    taken[target, :where.text] = torch.where(aligned, mapper, taken[target, :where.text])
            made = state.layouts[key] = (rows, taken)
        return made

    def attention(self, q, k, v, where: JointWhere, state: InvarianceRun):
        if where.rows != 2 or 0 not in where.chunks:   # not the pair's conditional rows: the host's attention
            return where.attend(q, k, v)
        if state.limits is None:
            steps = len(where.schedule) - 1
            state.limits = (controlled_steps(steps, self.adaln_ratio), controlled_steps(steps, self.attention_ratio))
        step = where.step
        adaln, inject = step < state.limits[0], step < state.limits[1]
        if adaln:
            rows, taken = self._gather(where, state, q.shape[0], q.shape[2], q.device)
            # x[rows, :, taken] is [batch, tokens, heads, dim]: the attention's layout back by a transpose
            q, k = (x[rows, :, taken].transpose(1, 2) for x in (q, k))
            if not inject:   # (injected, the target's values are the source's whole)
                v = v[rows, :, taken].transpose(1, 2)
        if inject:
            v, = rows_from_source(where, v)
        return where.attend(q, k, v)
