"""PIE-Bench's data format, as PnPInversion (cure-lab/PnPInversion, Ju et al., "PnP Inversion: Boosting
Diffusion-based Editing with 3 Lines of Code", ICLR 2024) ships it and reads it in ``evaluation/evaluate.py``.

A PIE-Bench folder holds ``mapping_file.json`` and ``annotation_images/``. The mapping file is a dict
``{file_id: item}``; each item has ``image_path`` (relative to ``annotation_images/``), ``original_prompt`` and
``editing_prompt`` (with ``[]`` around the words that differ), ``editing_instruction``, ``editing_type_id`` (a
string "0".."9", the folder's category), ``blended_word`` (the edited word in each prompt, space-separated: "cat
dog") and ``mask``: the region to edit, run-length encoded over the row-major flattened 512 x 512 image as
``[start, length, start, length, ...]`` runs of ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAPPING_FILE = "mapping_file.json"
IMAGES = "annotation_images"
#: PnPInversion decodes every mask at this shape (``mask_decode``'s default; ``evaluate.py`` passes none)
MASK_SHAPE = (512, 512)
#: the README's editing types, by ``editing_type_id``
EDITING_TYPES = {
    "0": "random editing", "1": "change object", "2": "add object", "3": "delete object",
    "4": "change content", "5": "change pose", "6": "change color", "7": "change material",
    "8": "change background", "9": "change style",
}


def mask_decode(encoded_mask, image_shape=MASK_SHAPE) -> np.ndarray:
    """PnPInversion's ``evaluation/evaluate.py`` ``mask_decode``, vectorised, same result: the runs set to 1 (a run
    that passes the end is cut there), shaped ``image_shape``, and then the outermost rows and columns set to 1
    ("to avoid annotation errors in boundary": they count as edited, so the background metrics leave them out).
    float64, as theirs (``np.zeros``)."""
    length = image_shape[0] * image_shape[1]
    mask = np.zeros((length,))
    for i in range(0, len(encoded_mask), 2):
        start = encoded_mask[i]
        n = min(encoded_mask[i + 1], length - start)
        if n > 0:
            mask[start:start + n] = 1
    mask = mask.reshape(image_shape[0], image_shape[1])
    mask[0, :] = 1
    mask[-1, :] = 1
    mask[:, 0] = 1
    mask[:, -1] = 1
    return mask


def mask_runs(encoded_mask, image_shape=MASK_SHAPE) -> np.ndarray:
    """The annotated region alone (bool ``image_shape``): the runs, without ``mask_decode``'s border, which is an
    evaluation convention and not part of what the annotator marked (the mask a mask-guided editor is given)."""
    length = image_shape[0] * image_shape[1]
    mask = np.zeros((length,), dtype=bool)
    for i in range(0, len(encoded_mask), 2):
        start = encoded_mask[i]
        mask[start:start + max(min(encoded_mask[i + 1], length - start), 0)] = True
    return mask.reshape(image_shape)


def mask_encode(mask) -> list[int]:
    """The RLE PIE-Bench stores (``[start, length, ...]`` over the row-major flattened mask, runs of ones);
    ``mask_runs(mask_encode(m), m.shape) == m``."""
    flat = np.asarray(mask, dtype=bool).reshape(-1).astype(np.int8)
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    out: list[int] = []
    for s, e in zip(starts, ends):
        out += [int(s), int(e - s)]
    return out


def plain(prompt: str) -> str:
    """A prompt without PIE-Bench's ``[]`` marks, as ``evaluate.py`` (and the editing scripts) strip them."""
    return prompt.replace("[", "").replace("]", "")


@dataclass
class Item:
    key: str
    image_path: str
    original_prompt: str     # brackets removed
    editing_prompt: str      # brackets removed
    editing_instruction: str
    editing_type_id: str
    blended_word: str
    mask_rle: list

    @property
    def blend_words(self) -> tuple[str, str]:
        """(source word, target word) of ``blended_word`` ("cat dog"); one word stands for both."""
        words = self.blended_word.split()
        if not words:
            return "", ""
        return (words[0], words[-1]) if len(words) > 1 else (words[0], words[0])


def load_items(data: str | Path, categories: list[str] | None = None, limit: int | None = None) -> list[Item]:
    """The mapping file's items in file order, those whose ``editing_type_id`` is in ``categories`` (all by
    default, as ``evaluate.py``'s ``--edit_category_list``), the first ``limit`` of them."""
    data = Path(data)
    path = data / MAPPING_FILE
    if not path.is_file():
        raise SystemExit(f"--data {data}: no {MAPPING_FILE} there (a PIE-Bench folder: {MAPPING_FILE} and {IMAGES}/)")
    raw = json.loads(path.read_text(encoding="utf-8"))
    items = []
    for key, item in raw.items():
        missing = [f for f in ("image_path", "original_prompt", "editing_prompt", "editing_type_id", "mask")
                   if f not in item]
        if missing:
            raise SystemExit(f"{path}: item {key} has no {', '.join(missing)} (PIE-Bench's fields: image_path, "
                             "original_prompt, editing_prompt, editing_instruction, editing_type_id, blended_word, mask)")
        if categories is not None and str(item["editing_type_id"]) not in categories:
            continue
        items.append(Item(key, item["image_path"], plain(item["original_prompt"]), plain(item["editing_prompt"]),
                          item.get("editing_instruction", ""), str(item["editing_type_id"]),
                          item.get("blended_word", ""), list(item["mask"])))
        if limit is not None and len(items) >= limit:
            break
    return items


def parse_categories(spec: str | None) -> list[str] | None:
    """``--categories``: "0-8", "1,3,6" or a mix; None (every category) when empty."""
    if not spec:
        return None
    out: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out += [str(i) for i in range(int(a), int(b) + 1)]
        elif part:
            out.append(str(int(part)))
    bad = [c for c in out if c not in EDITING_TYPES]
    if bad:
        raise SystemExit(f"--categories: {', '.join(bad)} not an editing type id (0-9)")
    return out
