"""Token alignment between a source and a target prompt, for Prompt-to-Prompt's refine and
replace edits (Hertz et al., "Prompt-to-Prompt Image Editing with Cross-Attention Control").

Refine (the paper's AttentionRefine) lets the target add or change words: every target token
aligned with a source token takes that source token's attention map; new tokens keep their
own. The correspondence is the reference code's global alignment (Needleman-Wunsch, match +1,
mismatch -1, gap 0) over the whole token sequences (start and end tokens included), with its
tie-breaking: a target token left unmatched is preferred, then a skipped source token, then
the diagonal (which pairs two tokens even when they differ). Positions after the target's
prompt (padding) map to the same index, as the reference's ``get_mapper`` does.

Replace (AttentionReplace) swaps words of prompts with the same number of words: a swapped
word's tokens take the maps of the source word's tokens, spread evenly when the two words
tokenize to different counts; every other position maps to itself.
"""
from __future__ import annotations

import torch

MATCH, MISMATCH, GAP = 1, -1, 0
_LEFT, _UP, _DIAG = 1, 2, 3


def align(source: list[int], target: list[int]) -> list[int]:
    """For each target position, the source position aligned with it, or -1 (a new token)."""
    n, m = len(source), len(target)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    trace = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        score[0][j], trace[0][j] = j * GAP, _LEFT
    for i in range(1, n + 1):
        score[i][0], trace[i][0] = i * GAP, _UP
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            left = score[i][j - 1] + GAP
            up = score[i - 1][j] + GAP
            diag = score[i - 1][j - 1] + (MATCH if source[i - 1] == target[j - 1] else MISMATCH)
            best = max(left, up, diag)
            score[i][j] = best
            trace[i][j] = _LEFT if best == left else _UP if best == up else _DIAG
    mapping = [-1] * m
    i, j = n, m
    while i > 0 or j > 0:
        move = trace[i][j]
        if move == _DIAG:
            mapping[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif move == _LEFT:
            j -= 1
        else:
            i -= 1
    return mapping


def refine_mapper(source: list[int], target: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mapper, alphas) over a ``length``-token context: the target's prompt positions (start
    token, words, end token) use the alignment; every position after it maps to itself.
    ``alphas`` is 1 where a target position takes a source map, 0 for new tokens."""
    mapping = align(source, target)
    mapper = torch.arange(length, dtype=torch.long)
    alphas = torch.ones(length)
    for j, i in enumerate(mapping[:length]):
        mapper[j] = max(i, 0)
        alphas[j] = 0.0 if i < 0 else 1.0
    return mapper, alphas


def sequence_refine(source: list, target: list, length: int, unpadded: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine's (mapper, alphas) over a diffusion transformer's whole text sequence (Joint Attention Inject,
    FTEdit's AdaLN invariance; ``stream_words``' streams of each prompt): each stream's prompts aligned
    (``refine_mapper``) in its own positions; positions outside the streams map to themselves.
    ``unpadded`` (Qwen-Image: each prompt its own length, the shorter padded to ``length`` and masked):
    the target's padding takes nothing of the source (its alphas 0), whose tokens there are real ones."""
    mapper, alphas = torch.arange(length, dtype=torch.long), torch.ones(length)
    for (src_ids, offset, size, _), (tgt_ids, _, _, _) in zip(source, target):
        m, a = refine_mapper(src_ids, tgt_ids, size)
        if unpadded:
            a[len(tgt_ids):] = 0.0
        mapper[offset:offset + size], alphas[offset:offset + size] = m + offset, a
    return mapper, alphas


def refine_probs(probs_source: torch.Tensor, probs_target: torch.Tensor, mapper: torch.Tensor,
                 alphas: torch.Tensor) -> torch.Tensor:
    """The target's cross-attention maps under refine: aligned tokens from the source."""
    a = alphas.to(probs_target)
    return probs_source[..., mapper.to(probs_source.device)] * a + probs_target * (1 - a)


def replacement_mapper(source_words: list[list[int]], target_words: list[list[int]], swapped: list[bool],
                       length: int) -> torch.Tensor:
    """The ``[length, length]`` matrix taking source token columns to target token columns for a
    word swap. ``*_words`` give each word's token positions (words in prompt order, the same
    number of words in both prompts); ``swapped`` says which words differ. A swapped word's
    source tokens feed its target tokens (one to one for equal counts, else evenly: each target
    token gets 1/count of every source token); other positions map one to one in order, and
    after the last swap each position to itself (the reference's rule)."""
    if not len(source_words) == len(target_words) == len(swapped):
        raise ValueError(f"replace needs prompts with the same number of words ({len(source_words)} vs {len(target_words)})")
    swaps = [(s, t) for s, t, w in zip(source_words, target_words, swapped) if w]
    mapper = torch.zeros(length, length)
    i = j = k = 0
    while i < length and j < length:
        if k < len(swaps) and swaps[k][0][0] == i:
            src, tgt = swaps[k]
            if len(src) == len(tgt):
                mapper[src, tgt] = 1.0
            else:
                for t in tgt:
                    mapper[src, t] = 1.0 / len(tgt)
            i, j, k = i + len(src), j + len(tgt), k + 1
        elif k < len(swaps):
            mapper[i, j] = 1.0
            i, j = i + 1, j + 1
        else:
            mapper[j, j] = 1.0
            i, j = i + 1, j + 1
    return mapper


def replace_probs(probs_source: torch.Tensor, mapper: torch.Tensor) -> torch.Tensor:
    """The target's cross-attention maps under replace: the source's maps taken through the word
    swap's ``mapper`` (``[..., M]`` maps, ``[M, M]`` mapper)."""
    return probs_source @ mapper.to(probs_source)
