"""Prompts as the host's tokenizer sees them: token ids, each word's positions, and
`word:value` lists of a node's inputs."""
from __future__ import annotations

import math

from .errors import NodeInputError


END_TOKEN = 49407  # CLIP's end-of-text token (every SD text encoder uses the CLIP vocabulary)


def _end(ids: list[int]) -> int:
    """The position of a chunk's end token (its last position where it has none)."""
    return ids.index(END_TOKEN, 1) if END_TOKEN in ids[1:] else len(ids) - 1


def prompt_tokens(clip, text: str, node: str, name: str | None = None, note: str = "") -> tuple[list[int], int]:
    """(the prompt's token ids from the start token to the end token, the context length), by
    the CLIP's own tokenizer (its first text encoder's: every SD encoder shares CLIP's vocabulary).
    Refuses a prompt longer than one CLIP window, naming input ``name`` (else quoting the prompt);
    ``note`` goes before what works."""
    tokens = clip.tokenize(text)
    chunks = next(iter(tokens.values()))
    if len(chunks) > 1:
        ids = [[t[0] for t in chunk] for chunk in chunks]
        count = sum(_end(c) - 1 for c in ids)
        window = len(ids[0]) - 2
        what = f"input '{name}'" if name else f"the prompt '{text[:40]}...'"
        raise NodeInputError(node, f"{what} has {count} tokens, more than one CLIP window holds ({window}, "
                                   f"{window + 2} with its start and end tokens){note}; shorten it to at most "
                                   f"{window} tokens.")
    ids = [t[0] for t in chunks[0]]
    return ids[:_end(ids) + 1], len(ids)


def word_tokens(clip, prompt: str, node: str) -> list[tuple[str, list[int]]]:
    """Each word of the prompt (split at spaces, as the reference code does) with its token
    positions, in order, by the CLIP's tokenizer."""
    ids, _ = prompt_tokens(clip, prompt, node)
    out, cursor = [], 1
    for word in prompt.split():
        w = prompt_tokens(clip, word, node)[0][1:-1]
        for i in range(cursor, len(ids) - len(w) + 1):
            if w and ids[i:i + len(w)] == w:
                out.append((word, list(range(i, i + len(w)))))
                cursor = i + len(w)
                break
    return out


def phrase_positions(clip, target_ids: list[int], phrase: str, name: str, node: str,
                     prompt: str = "target prompt") -> list[int]:
    """Every token position of ``phrase`` (one or more words) in the prompt ``target_ids``;
    refuses a phrase that is not in the prompt, naming input ``name``."""
    word_ids = prompt_tokens(clip, phrase.strip(), node, name)[0][1:-1]
    hits = [i for i in range(len(target_ids) - len(word_ids) + 1) if target_ids[i:i + len(word_ids)] == word_ids]
    if not word_ids or not hits:
        raise NodeInputError(node, f"input '{name}': '{phrase.strip()}' is not a word of the {prompt}.")
    return [j for i in hits for j in range(i, i + len(word_ids))]


def word_positions(clip, target_ids: list[int], spec: str, node: str, name: str = "reweight",
                   example: str = "'square:2, blue:0.5'", value: str = "scale") -> dict[int, float]:
    """Token positions in the target prompt and their values from ``"word:value, word:value"``
    (input ``name`` of the node). Values must be finite numbers."""
    positions: dict[int, float] = {}
    items = [part.strip() for part in spec.split(",") if part.strip()]
    if spec.strip() and not items:
        raise NodeInputError(node, f"input '{name}' is {spec!r}, which names no word; write 'word:{value}' with words of "
                                   f"the target prompt, comma-separated (e.g. {example}), or leave it empty.")
    for item in items:
        word, sep, scale = item.rpartition(":")
        try:
            number = float(scale)
        except ValueError:
            number, word = None, ""
        if not sep or not word.strip() or number is None:
            raise NodeInputError(node, f"input '{name}': '{item}' is not 'word:{value}' (e.g. {example}).")
        if not math.isfinite(number):
            raise NodeInputError(node, f"input '{name}': '{item}' is not a finite number (e.g. {example}).")
        for j in phrase_positions(clip, target_ids, word, name, node):
            positions[j] = number
    return positions


def blend_word_positions(clip, ids: list[int], words: str, name: str, node: str, prompt: str) -> list[int]:
    """Token positions of comma-separated words in a prompt (input ``name``); refuses an input
    of commas and spaces only (it would switch the local blend on with no word)."""
    phrases = [w for w in words.split(",") if w.strip()]
    if words.strip() and not phrases:
        raise NodeInputError(node, f"input '{name}' is {words!r}, which names no word; write words of the {prompt}, "
                                   f"comma-separated (e.g. 'circle'), or leave it empty.")
    return sorted({j for w in phrases for j in phrase_positions(clip, ids, w, name, node, prompt)})


T5_END = 1   # T5's end-of-text token (no start token)


def _words_in(ids: list[int], word_ids, prompt: str, offset: int) -> list[tuple[str, list[int]]]:
    out, cursor = [], 0
    for word in prompt.split():
        w = word_ids(word)
        for i in range(cursor, len(ids) - len(w) + 1):
            if w and ids[i:i + len(w)] == w:
                out.append((word, list(range(offset + i, offset + i + len(w)))))
                cursor = i + len(w)
                break
    return out


def sequence_words(clip, prompt: str, node: str, layout: str, text_tokens: int) -> list[tuple[str, list[int]]]:
    """Each word of the prompt with its positions in a diffusion transformer's text sequence of
    ``text_tokens``: Flux's T5 tokens (``layout`` "dit-double-single"); SD3's CLIP-L/G tokens (0 to 76)
    and, where the sequence is longer (a T5 encoder loaded), the T5 tokens after them. A word's
    positions in every stream count (its maps are summed)."""
    def t5_ids(text: str) -> list[int]:
        ids = [t[0] for t in clip.tokenize(text)["t5xxl"][0]]
        return ids[:ids.index(T5_END)] if T5_END in ids else ids

    streams = []
    if layout == "dit-double-single":
        streams.append((t5_ids(prompt), t5_ids, 0))
    else:
        ids, window = prompt_tokens(clip, prompt, node)
        streams.append((ids, lambda text: prompt_tokens(clip, text, node)[0][1:-1], 0))
        if text_tokens > window:   # a T5 encoder's tokens follow CLIP's
            streams.append((t5_ids(prompt), t5_ids, window))
    merged: dict[tuple[str, int], list[int]] = {}   # (word, its occurrence) -> positions, in the first stream's order
    for ids, word_ids, offset in streams:
        seen: dict[str, int] = {}
        for word, positions in _words_in(ids, word_ids, prompt, offset):
            seen[word] = seen.get(word, -1) + 1
            merged.setdefault((word, seen[word]), []).extend(positions)
    return [(word, positions) for (word, _), positions in merged.items()]
