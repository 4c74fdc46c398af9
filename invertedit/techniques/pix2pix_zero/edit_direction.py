"""pix2pix-zero's edit direction (Parmar et al., "Zero-shot Image-to-Image Translation",
SIGGRAPH 2023, Sec. 3.2 "Discovering edit directions").

Rather than a target prompt, an edit is a direction in the text-embedding space: many
sentences about the source concept (the paper generates about a thousand with GPT-3, e.g.
about cats) and as many about the target (dogs) are encoded; the direction is the mean of the
target sentences' embeddings minus the mean of the source sentences', and it is added to the
embedding of the image's own caption. Averaging over many sentences keeps what differs between
the concepts and cancels what the sentences happen to say besides.
"""
from __future__ import annotations

import torch


def edit_direction(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[1, ...]``: the mean of ``target`` ``[Nt, ...]`` minus the mean of ``source`` ``[Ns, ...]``
    over their first axis (the sentences)."""
    if source.shape[1:] != target.shape[1:]:
        raise ValueError(f"edit_direction: source embeddings {tuple(source.shape[1:])} and target "
                         f"{tuple(target.shape[1:])} differ")
    if source.shape[0] == 0 or target.shape[0] == 0:
        raise ValueError("edit_direction: no sentences on one side")
    return (target.mean(0) - source.mean(0))[None]


def sentences(text: str) -> list[str]:
    """The non-empty lines of ``text``, stripped (one sentence per line)."""
    return [line.strip() for line in text.splitlines() if line.strip()]
