"""Nouns that carry their colour in the toy flow world's T5, by a previous-token head.

The toy flow world's text encoder is the pack's seeded random tiny T5 (``tiny_flow_models``). A
random encoder barely mixes a token with its neighbours: in "a red circle and a blue square" the
context of "circle" after "red" and after "yellow" has cosine 0.92, so the DiT can tie a colour
word to its object by colour but a noun only by its place in the caption, and the nouns' attention
maps do not find their objects (docs/toyworld.md). World 2's CLIP has the same cure built weight by
weight (``workshop/toyworld/bound_text.py``: each noun takes in the latest colour word).

T5 has no absolute positions and no biases; it has a relative-position bias per head, computed in
the first block and added in every block. ``bind_previous_token`` gives one head a bias that
admits only the key one token back, and in the first block (whose input is the token embeddings,
before any mixing) makes that head's queries and keys zero, so its logits are the bias alone, and
its values a colour code: the ``colours``' tokens map to orthonormal codes, every other token of
the world's vocabulary to zero (solved exactly from the normalised embedding rows). Its output
writes each code, ``gain`` long, along its own direction of the residual. The world's captions
put each colour word right before its noun ("a red circle", "a green background"), so each noun's
context then carries its colour; the other tokens' contexts move less. Nothing is trained; the
rest of the encoder is the seeded one.
"""
from __future__ import annotations

import torch

PREVIOUS = -1   # the relative position admitted: the key one token before the query


def pieces(clip, word: str) -> list[int]:
    """``word``'s T5 token ids in ``clip``, without the end and padding tokens."""
    return [t for t, _ in clip.tokenize(word)["t5xxl"][0] if t not in (0, 1)]


def bind_words(clip, bind: dict) -> None:
    """``bind_previous_token`` with a config's ``clip.bind``: its colour words, the world's other
    words (with the end and padding tokens) and the gain."""
    bind_previous_token(clip, [pieces(clip, w) for w in bind["colours"]],
                        sorted({t for w in bind["others"] for t in pieces(clip, w)} | {0, 1}), gain=bind["gain"])


def bind_previous_token(clip, colours: list[list[int]], others: list[int], head: int = -1, gain: float = 8.0,
                        bias: float = 30.0, seed: int = 0) -> None:
    """Bind ``clip``'s T5 (a host ``comfy.sd.CLIP`` holding ``t5xxl``) in place: ``head`` attends to
    the previous token only; in the first block it copies the previous token's colour code (the
    token ids of each colour word in ``colours``, its last piece carrying the code; every id in
    ``others`` and the colours' other pieces: none), ``gain`` long, into the residual."""
    encoder = clip.cond_stage_model.t5xxl.transformer.encoder
    table = clip.cond_stage_model.t5xxl.transformer.shared.weight
    first = encoder.block[0].layer[0]
    attention = first.SelfAttention
    bias_table = attention.relative_attention_bias.weight                 # [buckets, heads]
    heads = bias_table.shape[1]
    head %= heads
    width = attention.q.weight.shape[0] // heads
    if len(colours) > width:
        raise ValueError(f"{len(colours)} colours, but a head has {width} channels")
    bucket = int(attention._relative_position_bucket(   # the host's own bucketing (a static method of its T5Attention)
        torch.tensor(PREVIOUS), bidirectional=True, num_buckets=attention.relative_attention_num_buckets,
        max_distance=attention.relative_attention_max_distance))
    coded = [ids[-1] for ids in colours]
    silent = sorted({*others, *(i for ids in colours for i in ids[:-1])} - set(coded))
    ids = torch.tensor(coded + silent, device=table.device)
    with torch.no_grad():
        rows = first.layer_norm(table[ids].float())                       # what the head reads: [tokens, model]
        targets = torch.zeros(len(ids), width, dtype=rows.dtype, device=rows.device)
        targets[torch.arange(len(coded)), torch.arange(len(coded))] = 1.0
        values = torch.linalg.lstsq(rows, targets).solution.T               # [width, model]: rows @ values.T = targets
        g = torch.Generator().manual_seed(seed)
        directions = torch.linalg.qr(torch.randn(rows.shape[1], width, generator=g, dtype=rows.dtype))[0]
        part = slice(head * width, (head + 1) * width)
        bias_table[:, head] = -bias
        bias_table[bucket, head] = bias
        attention.q.weight[part] = 0.0
        attention.k.weight[part] = 0.0
        attention.v.weight[part] = values.to(attention.v.weight)
        attention.o.weight[:, part] = (gain * directions.to(rows.device)).to(attention.o.weight)
