"""Prompt-to-Prompt (Hertz et al., "Prompt-to-Prompt Image Editing with Cross-Attention
Control", 2023): the target branch borrows the source branch's attention maps, so the layout
(where each word is drawn, which pixels attend to which) stays while the words change.
Replace swaps words of equal token count (all maps from the source); refine adds or changes
words (aligned tokens' maps from the source, new tokens' own); reweight then scales chosen
tokens' maps (the paper's AttentionReweight: an "equalizer" over the context, no
renormalisation), strengthening (> 1) or weakening (< 1, negative to invert) a word.

A policy decides, per attention call, whether the target row's maps are the source row's:
cross-attention maps for the first ``cross`` fraction of the steps, self-attention maps for
the first ``self_`` fraction, self-attention only in layers of at most ``self_max_tokens``
tokens (the paper: 16x16), as the paper's defaults do (cross 0.8, self 0.4). Words of the
target can have their own cross-attention fraction (the paper's per-word schedule): while
some tokens are injected and others not, each token's map column comes from the source or
from the target's own maps. The target keeps its own values: in cross-attention those carry
the new words.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .align import refine_probs
from .maps import attend, attention_probs


@dataclass(frozen=True)
class ReplaceSchedule:
    cross: float = 0.8          # fraction of the steps whose cross-attention maps are injected
    self_: float = 0.4          # fraction of the steps whose self-attention maps are injected
    self_max_tokens: int = 256  # self-attention maps larger than this are left alone (16 x 16)
    words: tuple[tuple[int, float], ...] = ()   # (target token position, its own cross fraction)
    length: int = 77            # context length (tokens) of the cross-attention maps

    def injects(self, kind: str, step: int, steps: int, tokens: int) -> bool:
        """Whether the target takes the source's maps in this call (``kind``: "cross" or "self")."""
        if kind == "cross":
            return step < max([self.cross] + [f for _, f in self.words]) * steps
        return step < self.self_ * steps and tokens <= self.self_max_tokens

    def word_alphas(self, step: int, steps: int) -> torch.Tensor | None:
        """Per-token 1 (source's map) / 0 (own map) over the context at ``step``, or None when every
        token follows the default fraction."""
        if not self.words:
            return None
        alphas = torch.full((self.length,), float(step < self.cross * steps))
        for position, fraction in self.words:
            alphas[position] = float(step < fraction * steps)
        return alphas


def mix_own(edited: torch.Tensor, q: torch.Tensor, k: torch.Tensor, heads: int,
            alphas: torch.Tensor | None) -> torch.Tensor:
    """The target's maps: per token column, the edited (source-derived) map where ``alphas`` is 1,
    the target row's own map where it is 0."""
    if alphas is None:
        return edited
    a = alphas.to(edited)
    return edited * a + attention_probs(q[1:2], k[1:2], heads) * (1 - a)


def replace_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                   equalizer: torch.Tensor | None = None, alphas: torch.Tensor | None = None) -> torch.Tensor:
    """Attention output of a (source, target) row pair where the target uses the source's maps
    (scaled per token by ``equalizer``) with its own values. Rows ``[0]`` source, ``[1]``
    target; returns the target's output row."""
    probs = attention_probs(q[:1], k[:1], heads)
    if equalizer is not None:
        probs = probs * equalizer.to(probs)
    return attend(mix_own(probs, q, k, heads, alphas), v[1:2])


def equalizer(length: int, positions: dict[int, float]) -> torch.Tensor:
    """Per-token scale over a ``length``-token context: ``positions`` maps token index to scale."""
    eq = torch.ones(length)
    for i, scale in positions.items():
        eq[i] = scale
    return eq


def refine_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mapper: torch.Tensor,
                  alphas: torch.Tensor, equalizer: torch.Tensor | None = None,
                  word_alphas: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-attention output of the target row under refine: the maps of target tokens aligned
    with source tokens come from the source (``attention/align.py``), new tokens keep theirs;
    then scaled per token by ``equalizer``."""
    probs = attention_probs(q[:2], k[:2], heads)
    edited = refine_probs(probs[:1], probs[1:2], mapper, alphas)
    if equalizer is not None:
        edited = edited * equalizer.to(edited)
    return attend(mix_own(edited, q, k, heads, word_alphas), v[1:2])
