"""Words a training node teaches the text encoder (Textual Inversion, Custom Diffusion): the new
word's checks, its initializer's token, prompts with its vectors in the initializer's place, as the
host's tokenizer puts an embedding file's vectors there, and the file written where the host's
"embedding:<name>" prompt syntax reads it (never over a file the pack did not write)."""
from __future__ import annotations

import re
from pathlib import Path

import folder_paths
import torch
from comfy.model_patcher import ModelPatcher

from .errors import NodeInputError
from .text_encoders import check_clip_width, text_encoder

MARK = "invertedit-textual-inversion"   # the metadata key of the embedding files the pack writes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: The longest name: its file, ``<name>.safetensors``, within the 255 bytes a file name may have on common filesystems.
NAME_MAX = 200


def check_word(node: str, model: ModelPatcher, clip, name: str,
               encoders: list[tuple[str, torch.nn.Module]] | None = None) -> None:
    """A new word's checks: a CLIP (its ``encoders``, default the one of SD1.x / SD2.x) of this model's
    width, a file name prompts can name."""
    encoders = encoders or [text_encoder(clip, node)]
    if not NAME.match(name or ""):
        raise NodeInputError(node, f"input 'name' is {name!r}; give a file name of letters, digits, '_', '-' or '.' "
                                   f"(no spaces: prompts name it as embedding:<name>).")
    if len(name) > NAME_MAX:
        raise NodeInputError(node, f"input 'name' is {len(name)} characters long; give at most {NAME_MAX} (it names the "
                                   "file <name>.safetensors, and file names end at 255 bytes).")
    _refuse_foreign(embedding_path(name), node)
    check_clip_width(node, model, encoders)


def _refuse_foreign(path: Path, node: str) -> None:
    """Refuse to replace a file at ``path`` this pack did not write (checked before a run, and again at saving)."""
    if not path.exists():
        return
    import safetensors

    try:
        with safetensors.safe_open(str(path), "pt") as f:
            ours = (f.metadata() or {}).get(MARK) is not None
    except Exception:   # not a safetensors file: not ours
        ours = False
    if not ours:
        raise NodeInputError(node, f"input 'name': {path} exists and was not written by this node; give another "
                                   f"name (this node never replaces an embedding it did not make).")


def initializer_id(clip, key: str, word: str, node: str) -> int:
    """The one token of ``word`` (the script requires a single token)."""
    tokens = [t for t, _, w in clip.tokenize(word or "", return_word_ids=True)[key][0] if w > 0]
    if len(word.split()) != 1 or len(tokens) != 1:
        raise NodeInputError(node, f"input 'initializer' is {word!r}, {len(tokens)} tokens for this tokenizer; give one "
                                   f"word of one token that names the subject's class (\"dog\", \"sculpture\").")
    return int(tokens[0])


def template_rows(clip, key: str, templates: tuple[str, ...], initializer: str, token: int,
                  node: str, what: str = "template") -> list[tuple[list, int]]:
    """Each template's token ids with the initializer in the placeholder's place, and that place."""
    rows = []
    for template in templates:
        prefix = template.split("{}")[0].strip()
        before = [t for t, _, w in clip.tokenize(prefix, return_word_ids=True)[key][0] if w > 0] if prefix else []
        tokens = clip.tokenize(template.format(initializer), return_word_ids=True)[key][0]
        at = [1 + len(before)]   # after the start token and the words before the placeholder
        if at[0] >= len(tokens) or tokens[at[0]][0] != token:   # a template the initializer does not fit
            raise NodeInputError(node, f"input 'initializer' {initializer!r} does not stand as one token in the "
                                       f"{what} {template!r}; give a plain word.")
        rows.append(([int(t) for t, _, _ in tokens], at[0]))
    return rows


def with_vectors(row: tuple[list, int], vectors: torch.Tensor) -> list:
    """A row of token ids with the placeholder's vectors in the initializer's place (as the host's
    tokenizer puts an embedding file's vectors), its length kept by dropping trailing pads."""
    ids, at = row
    out = ids[:at] + list(vectors.unbind(0)) + ids[at + 1:]
    return out[:len(ids)]


def embedding_path(name: str) -> Path:
    """Where a word named ``name`` is written: the host's first embeddings folder."""
    return Path(folder_paths.get_folder_paths("embeddings")[0]) / f"{name}.safetensors"


def save_embedding(clip, name: str, vectors: torch.Tensor | dict[str, torch.Tensor], initializer: str,
                   node: str) -> Path:
    """Write the vectors (one encoder's, or each encoder's by tokenizer key) where "embedding:<name>"
    finds them, keyed as the host's loader looks them up for each encoder; refuses to replace a file
    this node did not write."""
    import safetensors.torch

    if torch.is_tensor(vectors):
        vectors = {text_encoder(clip, node)[0]: vectors}
    path = embedding_path(name)
    _refuse_foreign(path, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = next(iter(vectors.values())).shape[0]
    safetensors.torch.save_file({f"clip_{key}": v.float().contiguous().cpu()   # sampling-path-ok: the file written, once
                                 for key, v in vectors.items()}, str(path),
                                metadata={MARK: "1", "initializer": initializer, "vectors": str(count)})
    return path
