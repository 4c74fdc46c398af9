"""Running the shipped workflows on PIE-Bench items headlessly, through the host's executor (the runner of
``workshop/headless``, as ``workshop/benchmarks/toyworld_flow.py`` runs them on the toy world).

Each item is one run per workflow: the item's image in every Load Image (carrying the item's mask as its painted
mask: an RGBA copy, transparent where the annotation marks the edit, as ComfyUI's mask editor saves one; the
mask-guided templates such as KV-Edit take it as the user's mask, the others ignore it), its prompts without
PIE-Bench's ``[]`` in the nodes titled "Source prompt" and "Target prompt" (and in the Prompt-to-Prompt and
Attention Store nodes' own prompt inputs, with ``blended_word`` as their blend / map words; a template without a
source prompt, such as RF-Inversion's, takes the target alone), its ``editing_instruction`` in a node titled
"Instruction" (the instruction editors' templates), the model the user
gives (``ckpt``: every Load Checkpoint loads it; or a built-in model). What is scored is the picture the workflow
saved (its last Save Image), or with ``NAME#K`` its K-th picture (its previews in graph order, then what it
saved; "Flux - Flow inversion and edit#0" is the reconstruction), resized to the item's size if the workflow
worked at another (Lanczos).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .format import IMAGES, Item, mask_runs

log = logging.getLogger("invertedit.piebench")

#: the nodes a template's prompts live in (by title), and the pack's nodes that take prompts themselves (by type)
SOURCE_PROMPT, TARGET_PROMPT, INSTRUCTION = "Source prompt", "Target prompt", "Instruction"
#: the text input of each kind of node those titles are on
TEXT_INPUT = {"PrimitiveStringMultiline": "value", "PrimitiveString": "value", "CLIPTextEncode": "text",
              "TextEncodeQwenImageEdit": "prompt", "TextEncodeQwenImageEditPlus": "prompt"}


def parse_workflow(spec: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME#K``: the workflow and which of its pictures is scored (None: the saved one)."""
    name, sep, pick = spec.rpartition("#")
    if sep and pick.strip().lstrip("-").isdigit():
        return name.strip(), int(pick)
    return spec.strip(), None


def method_folder(spec: str) -> str:
    """A folder name for a workflow spec (PnPInversion's ``output/<method>/annotation_images`` layout)."""
    return re.sub(r"[^A-Za-z0-9 ._+()-]", "_", spec).strip()


def item_overrides(item: Item, nodes: list[dict]) -> dict[str, dict]:
    """The item's texts for every node of the workflow (canvas ``nodes``) that takes them: the prompts in the nodes
    titled "Source prompt" and "Target prompt", ``editing_instruction`` in one titled "Instruction" (the
    instruction editors'), and the prompts and words in the pack's nodes that take them themselves
    (``toyworld_flow.case_overrides``' choice): Prompt-to-Prompt replaces when the prompts have as many words,
    refines otherwise. A workflow with neither a "Target prompt" nor an "Instruction" cannot be given the item's
    edit: an error says so."""
    src, tgt = item.original_prompt, item.editing_prompt
    src_word, tgt_word = item.blend_words
    same = len(src.split()) == len(tgt.split())
    texts = {SOURCE_PROMPT: src, TARGET_PROMPT: tgt, INSTRUCTION: item.editing_instruction}
    titled = {n.get("title"): n.get("type") for n in nodes if n.get("title") in texts}
    if TARGET_PROMPT not in titled and INSTRUCTION not in titled:
        from workshop.headless.runner import WorkflowError
        raise WorkflowError(f"the workflow has no node titled {TARGET_PROMPT!r} or {INSTRUCTION!r}: the tool writes "
                            "each item's editing prompt (or instruction) there, as the pack's templates have them")
    out = {}
    for title, kind in titled.items():
        if kind not in TEXT_INPUT:
            from workshop.headless.runner import WorkflowError
            raise WorkflowError(f"node {title!r} is a {kind}; the tool writes a text into "
                                f"{', '.join(TEXT_INPUT)} nodes")
        out[title] = {TEXT_INPUT[kind]: texts[title]}
    return {**out,
            "InvertEditJointAttentionInject": {"source_prompt": src, "target_prompt": tgt,
                                               "mode": "replace" if same else "refine",
                                               "blend_source_words": src_word, "blend_target_words": tgt_word},
            "InvertEditAttentionInject": {"source_prompt": src, "target_prompt": tgt,
                                          "mode": "replace" if same else "refine",
                                          "blend_source_words": src_word, "blend_target_words": tgt_word},
            "InvertEditAttentionStore": {"prompt": src, "words": src_word}}


def masked_input(source: Path, item: Item, folder: Path) -> Path:
    """The item's image as Load Image takes a painted mask: RGBA, alpha 0 where the annotation marks the edit
    (``mask_runs``: the runs, without ``mask_decode``'s evaluation border)."""
    with Image.open(source) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    edit = mask_runs(item.mask_rle, (h, w))
    alpha = Image.fromarray(np.where(edit, 0, 255).astype(np.uint8), mode="L")
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"piebench_{item.key}.png"
    rgba.save(out)
    return out


def run_one(host, spec: str, item: Item, image: Path, out_file: Path, *, builtin: str | None = None,
            ckpt: str | None = None, overrides: dict | None = None, quick: bool = False,
            megapixels: float | None = None) -> Path:
    """Run workflow ``spec`` on ``item`` (``image``: its masked input) and write the scored picture, at the item's
    size, to ``out_file``."""
    from workshop import make_workflows as M
    from workshop.headless.runner import WorkflowError, execute, load_workflow, pictures, prepare_prompt

    name, pick = parse_workflow(spec)
    path = Path(name) if name.endswith(".json") else M.REPO / "example_workflows" / f"{name}.json"
    wf = load_workflow(path)
    titles = {n.get("title") for n in wf["nodes"]} | {n.get("type") for n in wf["nodes"]}
    ov = M.toy_overrides(path.stem, quick=quick) if builtin is not None else {}
    for ref, values in item_overrides(item, wf["nodes"]).items():
        ov.setdefault(ref, {}).update(values)
    if megapixels is not None:
        ov.setdefault("ImageScaleToTotalPixels", {})["megapixels"] = megapixels
    for ref, values in (overrides or {}).items():
        ov.setdefault(ref, {}).update(values)
    ov = {ref: v for ref, v in ov.items() if ref in titles}
    prompt = prepare_prompt(wf, image=image, builtin=builtin, ckpt=ckpt, overrides=ov, host=host)
    shown = pictures(prompt, execute(prompt, host=host))
    shown.sort(key=lambda p: (p.class_type == "SaveImage", int(p.node) if p.node.isdigit() else 0))
    if not shown:
        raise WorkflowError(f"workflow {name!r} showed no picture (no Save Image or Preview Image node)")
    if pick is None:
        saved = [p for p in shown if p.class_type == "SaveImage"]
        chosen = (saved or shown)[-1]
    else:
        if not -len(shown) <= pick < len(shown):
            raise WorkflowError(f"{spec!r}: the workflow shows {len(shown)} pictures (0-{len(shown) - 1})")
        chosen = shown[pick]
    with Image.open(image) as src:
        size = src.size
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(chosen.path) as got:
        got = got.convert("RGB")
        if got.size != size:
            got = got.resize(size, Image.LANCZOS)
        got.save(out_file)
    return out_file


def output_path(out: Path, spec: str, item: Item) -> Path:
    """``OUT/<method>/annotation_images/<image_path>`` as a PNG (lossless: PnPInversion's scripts saved JPEG)."""
    return out / method_folder(spec) / IMAGES / Path(item.image_path).with_suffix(".png")

