"""Token alignment between a source and a target prompt, for Prompt-to-Prompt's refine edit.

Refine (the paper's AttentionRefine) lets the target add or change words: every target token
that also stands, in order, in the source takes that source token's attention map; new tokens
keep their own. The correspondence is a global sequence alignment (Needleman-Wunsch) with the
paper's scores: match +1, mismatch -1, gap 0, so a changed word is an insertion plus a
deletion rather than a substitution, and unchanged words keep their maps around it.
"""
from __future__ import annotations

import torch

MATCH, MISMATCH, GAP = 1, -1, 0


def align(source: list[int], target: list[int]) -> list[int]:
    """For each target position, the source position aligned with it, or -1 (a new token)."""
    n, m = len(source), len(target)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        score[i][0] = i * GAP
    for j in range(1, m + 1):
        score[0][j] = j * GAP
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = score[i - 1][j - 1] + (MATCH if source[i - 1] == target[j - 1] else MISMATCH)
            score[i][j] = max(diag, score[i - 1][j] + GAP, score[i][j - 1] + GAP)
    mapping = [-1] * m
    i, j = n, m
    while i > 0 and j > 0:   # trace back, preferring matches
        same = source[i - 1] == target[j - 1]
        if same and score[i][j] == score[i - 1][j - 1] + MATCH:
            mapping[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif score[i][j] == score[i][j - 1] + GAP:
            j -= 1
        elif score[i][j] == score[i - 1][j] + GAP:
            i -= 1
        else:
            i, j = i - 1, j - 1
    return mapping


def refine_mapper(source: list[int], target: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mapper, alphas) over a ``length``-token context: the target's prompt positions (start
    token and words) use the alignment; the positions after the prompt (end and padding) map
    to the source's positions after its prompt, in order. ``alphas`` is 1 where a target
    position takes a source map, 0 for new tokens."""
    mapping = align(source, target)
    mapper = torch.zeros(length, dtype=torch.long)
    alphas = torch.ones(length)
    for j, i in enumerate(mapping):
        mapper[j] = max(i, 0)
        alphas[j] = 0.0 if i < 0 else 1.0
    tail = length - len(target)
    mapper[len(target):] = torch.clamp(len(source) + torch.arange(tail), max=length - 1)
    return mapper, alphas


def refine_probs(probs_source: torch.Tensor, probs_target: torch.Tensor, mapper: torch.Tensor,
                 alphas: torch.Tensor) -> torch.Tensor:
    """The target's cross-attention maps under refine: aligned tokens from the source."""
    a = alphas.to(probs_target)
    return probs_source[..., mapper.to(probs_source.device)] * a + probs_target * (1 - a)
