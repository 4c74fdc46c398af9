"""A small PIE-Bench-format set from the toy world (world 2's edit cases, ``workshop/toyworld/scenes.py``), for
trying ``python -m workshop.piebench`` on the toy flow model and for its tests:

    python -m workshop.piebench.toyset OUT [--cases N] [--seed 0]

Each case becomes one item as PnPInversion's README lays PIE-Bench out: ``annotation_images/<type folder>/<id>.png``
(the source scene at 512 px, PIE-Bench's size), and in ``mapping_file.json`` its captions as ``original_prompt`` /
``editing_prompt`` with ``[]`` around the words that differ, an ``editing_instruction``, the ``editing_type_id`` of
the edit's kind (colour: 6 change color, shape: 1 change object, drop: 3 delete object, background: 8 change
background), the edited noun in each caption as ``blended_word``, and as ``mask`` the RLE of where the exact target
differs from the source by intent (the edited object's source and target masks; the background outside every
object for a background edit).
"""
from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path

import numpy as np

from .format import EDITING_TYPES, IMAGES, MAPPING_FILE, mask_encode

#: world 2's edit kinds as PIE-Bench's editing types
TYPE_OF_KIND = {"colour": "6", "shape": "1", "drop": "3", "background": "8"}


def bracketed(source: str, target: str) -> tuple[str, str]:
    """The two prompts with ``[]`` around the words that differ, as PIE-Bench marks them."""
    a, b = source.split(), target.split()
    out_a, out_b = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out_a += a[i1:i2]
            out_b += b[j1:j2]
            continue
        if i2 > i1:
            out_a.append("[" + " ".join(a[i1:i2]) + "]")
        if j2 > j1:
            out_b.append("[" + " ".join(b[j1:j2]) + "]")
    return " ".join(out_a), " ".join(out_b)


def instruction(case) -> str:
    if case.kind == "background":
        return f"Change the background to {case.target.background}"
    obj = case.source.objects[case.index]
    if case.kind == "colour":
        return f"Make the {obj.shape} {case.target.objects[case.index].colour}"
    if case.kind == "shape":
        return f"Turn the {obj.shape} into a {case.target.objects[case.index].shape}"
    return f"Remove the {obj.colour} {obj.shape}"


def build(out: Path, cases: int = 4, seed: int = 0) -> dict:
    """Write the set into ``out``; returns the mapping."""
    from PIL import Image

    from workshop.benchmarks.toyworld2 import blend_words, changed_region
    from workshop.toyworld import scenes as S

    mapping = {}
    for i, case in enumerate(S.edit_cases(cases, seed=seed)):
        type_id = TYPE_OF_KIND[case.kind]
        key = f"{type_id}{i:011d}"
        rel = f"{type_id}_{EDITING_TYPES[type_id].replace(' ', '_')}/{key}.png"
        src_img, src_masks = S.render(case.source, S.SIZE)
        _, tgt_masks = S.render(case.target, S.SIZE)
        region = changed_region(case, src_masks, tgt_masks).numpy()
        path = out / IMAGES / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((src_img * 255).round().byte().numpy()).save(path)
        original, editing = bracketed(case.source_caption, case.target_caption)
        src_word, tgt_word = blend_words(case)
        mapping[key] = {"image_path": rel, "original_prompt": original, "editing_prompt": editing,
                        "editing_instruction": instruction(case), "editing_type_id": type_id,
                        "blended_word": " ".join(w for w in (src_word, tgt_word) if w),
                        "mask": mask_encode(np.asarray(region))}
    out.mkdir(parents=True, exist_ok=True)
    (out / MAPPING_FILE).write_text(json.dumps(mapping, indent=1), encoding="utf-8")
    return mapping


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m workshop.piebench.toyset", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cases", type=int, default=4, help="how many of world 2's edit cases (kinds in turn)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    mapping = build(args.out, args.cases, args.seed)
    print(f"wrote {len(mapping)} items to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
