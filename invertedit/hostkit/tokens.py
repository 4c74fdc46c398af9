"""Prompts as the host's tokenizer sees them: token ids, each word's positions, and
`word:value` lists of a node's inputs."""
from __future__ import annotations

import math
import re

from ..attention.blend_words import key as word_key
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


#: The host's tokenizer keys, as messages name the encoders.
ENCODER_NAMES = {"l": "CLIP-L", "g": "CLIP-G", "t5xxl": "T5", "h": "CLIP-H", "qwen25_7b": "Qwen2.5-VL"}
CLIP_KEYS = ("l", "g", "h")   # the SD checkpoints' text encoders (CLIP's vocabulary, its start and end tokens)


def check_clip_tokenizer(clip, node: str, model_name: str) -> None:
    """Refuse a ``clip`` whose tokenizers are not an SD checkpoint's CLIPs (Flux's or SD3's T5, Qwen-Image's
    Qwen2.5-VL) on a node that finds words by CLIP's tokens: its prompts may be as wide as the model's
    cross-attention (the tiny models' are) and would then be read as CLIP tokens, silently."""
    keys = list(clip.tokenize("").keys())
    other = [key for key in keys if key not in CLIP_KEYS]
    if other:
        said = ", ".join(ENCODER_NAMES.get(key, key) for key in keys)
        raise NodeInputError(node, f"input 'clip' holds the text encoders {said}, another model family's (Flux.1, "
                                   f"SD3 or Qwen-Image); this model ({model_name}) reads prompts of CLIP: connect its "
                                   f"checkpoint's CLIP.")


def encoder_tokens(clip, text: str) -> dict[str, tuple[int, int]]:
    """Per text encoder of ``clip`` (the host's tokenizer keys): (the prompt's tokens without its start, end and
    padding, the tokens one window holds). A CLIP window is a chunk of 75; T5 pads a prompt to a length (the empty
    prompt's: 256 for Flux, 77 for SD3) and grows past it."""
    out = {}
    empty = clip.tokenize("")
    for key, chunks in clip.tokenize(text).items():
        ids = [[t[0] for t in chunk] for chunk in chunks]
        if ids and ids[0] and ids[0][0] == END_TOKEN - 1:    # CLIP: start and end tokens around each chunk
            out[key] = (sum(_end(c) - 1 for c in ids), len(ids[0]) - 2)
        else:                                                # T5 and the like: the prompt, its end token (1), padding (0)
            flat = [t for c in ids for t in c]
            padded = sum(len(c) for c in empty.get(key, ids))
            out[key] = (flat.index(1) if 1 in flat else len(flat), padded - 1)
    return out


def longer_prompt(clip, texts: dict[str, str], encoders: tuple[str, ...] | None = None) -> str:
    """Which encoder's window the prompts ``texts`` (name: text) overflow, with each one's token count: what a
    message says when two prompts that must align token by token encode to sequences of different lengths.
    ``encoders``: the tokenizer keys whose tokens make the model's text sequence (Flux: T5's alone), else all."""
    counts = {name: encoder_tokens(clip, text) for name, text in texts.items()}
    parts = []
    for key in next(iter(counts.values())):
        if encoders is not None and key not in encoders:
            continue
        took = {name: c[key][0] for name, c in counts.items()}
        window = max(c[key][1] for c in counts.values())
        if any(n > window for n in took.values()):
            said = ", ".join(f"the {name} {n}" for name, n in took.items())
            parts.append(f"{ENCODER_NAMES.get(key, key)} tokens: {said}, over one window of {window}")
    if not parts:
        return "shorten the longer prompt"
    return "; ".join(parts) + (" (a character of a script other than Latin can take several tokens); shorten the "
                               "longer prompt to one window")


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


def word_values(spec: str, node: str, name: str, example: str, value: str) -> list[tuple[str, float]]:
    """The ``(phrase, number)`` items of ``"word:value, word:value"`` (input ``name`` of the node);
    values must be finite numbers."""
    items = [part.strip() for part in spec.split(",") if part.strip()]
    if spec.strip() and not items:
        raise NodeInputError(node, f"input '{name}' is {spec!r}, which names no word; write 'word:{value}' with words of "
                                   f"the target prompt, comma-separated (e.g. {example}), or leave it empty.")
    out = []
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
        out.append((word, number))
    return out


def word_positions(clip, target_ids: list[int], spec: str, node: str, name: str = "reweight",
                   example: str = "'square:2, blue:0.5'", value: str = "scale") -> dict[int, float]:
    """Token positions in the target prompt and their values from ``"word:value, word:value"``
    (input ``name`` of the node). Values must be finite numbers."""
    positions: dict[int, float] = {}
    for word, number in word_values(spec, node, name, example, value):
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


def _t5_ids(clip, text: str) -> list[int]:
    """The T5 token ids of ``text`` up to and with its end token (no start token, no padding)."""
    ids = [t[0] for t in clip.tokenize(text)["t5xxl"][0]]
    return ids[:ids.index(T5_END) + 1] if T5_END in ids else ids


UMT5_KEY = "umt5xxl"   # the host's tokenizer key of UMT5-XXL (Wan's text encoder)


def _umt5_ids(clip, text: str) -> list[int]:
    """Wan's UMT5 token ids of ``text`` up to and with its end token (no start token, no padding), the end token the
    tokenizer's own (its SentencePiece model's: 1 for UMT5's)."""
    tokenizer = getattr(clip.tokenizer, clip.tokenizer.clip)   # SD1Tokenizer keeps it as "clip_umt5xxl"
    ids = [t[0] for t in clip.tokenize(text)[UMT5_KEY][0]]
    end = tokenizer.end_token
    return ids[:ids.index(end) + 1] if end in ids else ids


QWEN_KEY = "qwen25_7b"       # the host's tokenizer key of Qwen2.5-VL (Qwen-Image's text encoder)
QWEN_IM_START, QWEN_IM_END, QWEN_USER, QWEN_NEWLINE, QWEN_ASSISTANT = 151644, 151645, 872, 198, 77091
#: what follows the prompt in the model's text (the chat template's end): "<|im_end|>", "\n", "<|im_start|>",
#: "assistant", "\n"
QWEN_TAIL = [QWEN_IM_END, QWEN_NEWLINE, QWEN_IM_START, QWEN_ASSISTANT, QWEN_NEWLINE]


def _byte_units() -> dict[str, int]:
    """Byte-level BPE's printable stand-in of each byte (GPT-2's ``bytes_to_unicode``, which Qwen2's tokenizer
    uses: "Ġ" is the space): character -> byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


_BYTES = _byte_units()


def _qwen_tokenizer(clip):
    """The CLIP's Qwen2 tokenizer (the host's ``Qwen25_7BVLITokenizer``'s ``tokenizer``)."""
    outer = getattr(clip, "tokenizer", None)
    inner = getattr(outer, getattr(outer, "clip", QWEN_KEY), None)
    return getattr(inner, "tokenizer", None)


def qwen_text_ids(clip, text: str) -> tuple[list[int], int]:
    """(the Qwen2.5-VL token ids of the model's text sequence of ``text``, how many of them are the prompt's):
    the host's QwenImageTokenizer puts the prompt in its chat template and ``QwenImageTEModel.encode_token_weights``
    cuts the template's start, so the model's text tokens are those after "<|im_start|>user\n": the prompt's, then
    the template's end ("<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"). Cut here as the host cuts it."""
    ids = [t[0] for t in clip.tokenize(text)[QWEN_KEY][0]]
    end, starts = -1, 0
    for i, token in enumerate(ids):
        if isinstance(token, int) and token == QWEN_IM_START and starts < 2:
            end, starts = i, starts + 1
    if len(ids) > end + 3 and ids[end + 1] == QWEN_USER and ids[end + 2] == QWEN_NEWLINE:
        end += 3
    ids = ids[end:] if end >= 0 else ids[-1:]
    prompt = len(ids) - len(QWEN_TAIL) if ids[-len(QWEN_TAIL):] == QWEN_TAIL else len(ids)
    return ids, prompt


def _qwen_words(clip, ids: list[int], count: int) -> list[tuple[str, list[int]]]:
    """Each word of the prompt (split at white space) with its positions among ``ids[:count]``, the prompt's
    Qwen2 tokens: the tokens whose bytes overlap the word's. Qwen2's byte-level BPE keeps a word's leading space
    inside its token ("Ġred") and may split a character over several tokens, so the words are read from the
    tokens' own bytes, as they occur inside the prompt."""
    tokenizer = _qwen_tokenizer(clip)
    if tokenizer is None:
        return []
    spans, raw = [], b""
    for token in tokenizer.convert_ids_to_tokens(ids[:count]):
        piece = bytes(_BYTES[c] for c in token) if all(c in _BYTES for c in token) else token.encode()
        spans.append((len(raw), len(raw) + len(piece)))
        raw += piece
    text = raw.decode("utf-8", errors="replace")
    out = []
    for match in re.finditer(r"\S+", text):
        start, stop = len(text[:match.start()].encode()), len(text[:match.end()].encode())
        positions = [i for i, (a, b) in enumerate(spans) if a < stop and b > start]
        if positions:
            out.append((match.group(), positions))
    return out


def sequence_streams(clip, prompt: str, node: str, text_sequence: str, text_tokens: int,
                     name: str | None = None) -> list[tuple[list[int], int, int]]:
    """The prompt in each stream of a diffusion transformer's text sequence of ``text_tokens``: (its
    token ids, with the stream's start and end tokens; the stream's first position; the stream's
    length). ``text_sequence``: the model family's (``hostkit/family.py``). Flux ("t5xxl"): T5's
    tokens. SD3 ("clip+t5xxl"): CLIP-L/G's window (0 to 76) and, where the sequence is longer (a T5
    encoder loaded), T5's tokens after it. Qwen-Image ("qwen25_7b"): Qwen2.5-VL's tokens after the chat
    template's start (``qwen_text_ids``), unpadded: the stream is the prompt's own length."""
    if text_sequence == "t5xxl":
        return [(_t5_ids(clip, prompt), 0, text_tokens)]
    if text_sequence == UMT5_KEY:   # Wan: UMT5's tokens, padded to 512
        return [(_umt5_ids(clip, prompt), 0, text_tokens)]
    if text_sequence == QWEN_KEY:
        ids, _ = qwen_text_ids(clip, prompt)
        return [(ids, 0, text_tokens)]
    ids, window = prompt_tokens(clip, prompt, node, name)
    streams = [(ids, 0, window)]
    if text_tokens > window:   # a T5 encoder's tokens follow CLIP's
        streams.append((_t5_ids(clip, prompt), window, text_tokens - window))
    return streams


def stream_words(clip, prompt: str, node: str, text_sequence: str, text_tokens: int,
                 name: str | None = None) -> list[tuple[list[int], int, int, list[tuple[str, list[int]]]]]:
    """``sequence_streams`` with each stream's words: (ids, offset, length, each word of the prompt with
    its positions in the stream's ids)."""
    def t5_words(text: str) -> list[int]:
        return [i for i in _t5_ids(clip, text) if i != T5_END]

    def clip_words(text: str) -> list[int]:
        return prompt_tokens(clip, text, node)[0][1:-1]

    def umt5_words(text: str) -> list[int]:
        return _umt5_ids(clip, text)[:-1]

    out = []
    for n, (ids, offset, length) in enumerate(sequence_streams(clip, prompt, node, text_sequence, text_tokens, name)):
        if text_sequence == QWEN_KEY:
            words = _qwen_words(clip, ids, qwen_text_ids(clip, prompt)[1])
        else:
            words = _words_in(ids, umt5_words if text_sequence == UMT5_KEY else
                              t5_words if text_sequence == "t5xxl" or n > 0 else clip_words, prompt, 0)
        out.append((ids, offset, length, words))
    return out


def sequence_words(clip, prompt: str, node: str, text_sequence: str, text_tokens: int) -> list[tuple[str, list[int]]]:
    """Each word of the prompt with its positions in a diffusion transformer's text sequence of
    ``text_tokens`` (``sequence_streams``). A word's positions in every stream count (its maps are
    summed)."""
    merged: dict[tuple[str, int], list[int]] = {}   # (word, its occurrence) -> positions, in the first stream's order
    for _, offset, _, words in stream_words(clip, prompt, node, text_sequence, text_tokens):
        seen: dict[str, int] = {}
        for word, positions in words:
            seen[word] = seen.get(word, -1) + 1
            merged.setdefault((word, seen[word]), []).extend(p + offset for p in positions)
    return [(word, positions) for (word, _), positions in merged.items()]


def sequence_phrase_positions(words: list[tuple[str, list[int]]], phrase: str, node: str, name: str,
                              prompt: str = "target prompt") -> list[int]:
    """The positions of every word of ``phrase`` in a prompt's text sequence (``sequence_words``): the
    prompt's words written so, else those that are so but for case and the punctuation around them
    ("cat" finds "Cat,"); refuses a word that is not in the prompt, naming input ``name``."""
    out = []
    for word in phrase.split():
        hits = ([p for w, found in words if w == word for p in found]
                or [p for w, found in words if word_key(w) and word_key(w) == word_key(word) for p in found])
        if not hits:
            raise NodeInputError(node, f"input '{name}': '{word}' is not a word of the {prompt} "
                                       f"({[w for w, _ in words]}).")
        out += hits
    return out


def sequence_word_positions(words: list[tuple[str, list[int]]], spec: str, node: str, name: str, example: str,
                            value: str) -> dict[int, float]:
    """``word_positions`` on a diffusion transformer's text sequence: ``"word:value, ..."`` to the
    positions of every word of each phrase (``sequence_words`` of the target prompt) and the values."""
    return {p: number for phrase, number in word_values(spec, node, name, example, value)
            for p in sequence_phrase_positions(words, phrase, node, name)}
