"""pix2pix-zero's edit direction inside the host (math in ``guidance/edit_direction.py``):
sentences encoded with the host's CLIP, or embeddings from user CONDITIONINGs, averaged per
side; the direction added to every entry of the source prompt's CONDITIONING (its
cross-attention embedding, and its pooled output where every input has one: SDXL's)."""
from __future__ import annotations

import torch

from ..guidance.edit_direction import edit_direction, sentences
from .errors import NodeInputError, check_conditioning

NAME = "Edit Direction"


def encoded(clip, text: str, name: str) -> list:
    """A CONDITIONING of every sentence of ``text`` (one per line), one entry per sentence."""
    lines = sentences(text)
    if not lines:
        raise NodeInputError(NAME, f"input '{name}' has no sentences; write one sentence per line (the paper "
                                   f"averages many, e.g. 'a cat sitting on a sofa'), or connect '{name.replace('sentences', 'embeddings')}'.")
    out = []
    for line in lines:
        out += clip.encode_from_tokens_scheduled(clip.tokenize(line))
    return out


def side(conditioning, clip, text: str, name: str) -> list:
    """One side's CONDITIONING: the user's (``*_embeddings``) when connected, else the sentences
    of ``text`` encoded with ``clip``."""
    if conditioning is not None:
        check_conditioning(NAME, name.replace("sentences", "embeddings"), conditioning)
        return conditioning
    if clip is None:
        raise NodeInputError(NAME, f"input '{name}' needs the 'clip' input to be encoded; connect the model's CLIP, "
                                   f"or connect '{name.replace('sentences', 'embeddings')}' instead.")
    return encoded(clip, text, name)


def _stack(conditioning: list, key: str | None, what: str, shape: tuple) -> torch.Tensor | None:
    """All rows of a CONDITIONING's embeddings (``key`` None) or pooled outputs, ``[N, ...]``;
    None for pooled outputs some entry lacks. Refuses embeddings of another shape than the prompt's."""
    rows = []
    for emb, extra in conditioning:
        t = emb if key is None else extra.get(key)
        if t is None:
            return None
        if tuple(t.shape[1:]) != shape:
            if key is not None:
                return None
            raise NodeInputError(NAME, f"{what} encodes to {tuple(t.shape[1:])} (tokens, width), the prompt "
                                       f"('conditioning') to {shape}; use sentences of at most 75 tokens (one 77-token "
                                       f"chunk, like the prompt) and the same model's CLIP for both.")
        rows.append(t.float().reshape(-1, *shape))
    return torch.cat(rows)


def add_direction(conditioning: list, source: list, target: list) -> list:
    """The prompt's CONDITIONING with the mean target minus mean source embedding added to each
    entry (and to its pooled output when every input has one of the same width)."""
    emb0, extra0 = conditioning[0]
    shape = tuple(emb0.shape[1:])
    direction = edit_direction(_stack(source, None, "a source sentence", shape), _stack(target, None, "a target sentence", shape))
    pooled = extra0.get("pooled_output")
    pooled_direction = None
    if pooled is not None:
        p_shape = tuple(pooled.shape[1:])
        src, tgt = _stack(source, "pooled_output", "", p_shape), _stack(target, "pooled_output", "", p_shape)
        if src is not None and tgt is not None:
            pooled_direction = edit_direction(src, tgt)
    out = []
    for emb, extra in conditioning:
        if tuple(emb.shape[1:]) != shape:
            raise NodeInputError(NAME, f"input 'conditioning' has entries of different token lengths ({shape} and "
                                       f"{tuple(emb.shape[1:])}); connect one prompt's CONDITIONING.")
        extra = dict(extra)
        if pooled_direction is not None and extra.get("pooled_output") is not None:
            p = extra["pooled_output"]
            extra["pooled_output"] = p + pooled_direction.to(p)
        out.append([emb + direction.to(emb), extra])
    return out
