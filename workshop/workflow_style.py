"""How the example workflows read on the canvas (issue 79): the house style ``workshop.make_workflows``
applies to every technique's workflow description before ``build_canvas`` writes it.

- **Groups**: every node belongs to a stage (load and prompts, invert, teach, edit, result), each a
  coloured group; the groups sit left to right and the saved view shows the whole graph
  (``build_canvas``'s ``stages``).
- **One Save Image**: the workflow's result (its description's ``result``, or its only Save Image) is
  saved; every other Save Image becomes a Preview Image of the same title.
- **Each prompt typed once**: every prompt is a String (Multiline) node titled for it ("Source
  prompt"), feeding its CLIP Text Encode and every other node that takes the same words (Attention
  Inject's source_prompt, say).
- **A short note**: the note on the canvas is its heading, what the technique does (its row's
  sentence), how to run it in a line and a link to the whole text, which
  ``docs/templates/<name>.md`` holds.

Plain data in, plain data out; the node definitions come from the booted host (``node_info``).
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

REPOSITORY = "https://github.com/invertedit/ComfyUI-InvertEdit"   # pyproject.toml's [project.urls]
TEMPLATE_DOCS = "docs/templates"

#: the stages in reading order: key, the group's title, its colour (the frontend's group palette)
STAGES = [
    {"key": "load", "title": "Model, image and prompts", "color": "#3f789e"},
    {"key": "teach", "title": "Teach the model", "color": "#a1309b"},
    {"key": "invert", "title": "Invert the image", "color": "#8A8"},
    {"key": "edit", "title": "Edit", "color": "#b58b2a"},
    {"key": "result", "title": "Result", "color": "#88A"},
]

# Stock nodes by stage; the pack's nodes by their menu category and name (below)
_LOAD = {"CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "VAELoader", "ReferenceLatent",
         "TextEncodeQwenImageEdit", "ModelSamplingAuraFlow", "InvertEditToyModel", "InvertEditDemoModel", "LoadImage", "ImageScale",
         "ImageScaleToTotalPixels", "GetImageSize", "CLIPTextEncode", "PrimitiveStringMultiline", "PrimitiveString",
         "VAEEncode", "ModelSamplingFlux", "EmptyLatentImage", "SolidMask", "MaskComposite", "InvertEditLoadInversion",
         "ImageToMask", "GrowMask", "InvertImage"}
_RESULT = {"VAEDecode", "ImageFromBatch", "ImageStitch", "SaveImage", "PreviewImage", "MaskToImage",
           "InvertEditSaveInversion", "SaveLoRANode"}
_TEACH_CATEGORIES = ("InvertEdit/personalise", "InvertEdit/imagic")

#: nodes shown collapsed (their title bar only): one step with nothing to set
COLLAPSED = {"VAEEncode", "VAEDecode", "ImageFromBatch", "GetImageSize", "DisableNoise"}

NOTE_WORDS = 90        # the canvas note's words at most, heading and link included
PROMPT_WORDS = 3       # a typed text of at least this many words is a prompt (blend words are not)


def stage_of(class_type: str, info: Mapping[str, Any] | None) -> str:
    """The stage a node belongs to: a stock node by its kind; one of the pack's by its menu category
    (inversion nodes and the flow inverters invert; personalisation and Imagic's training teach)."""
    if class_type in _RESULT:
        return "result"
    if class_type in _LOAD:
        return "load"
    category = str((info or {}).get("category", ""))
    name = class_type.removeprefix("InvertEdit")
    if category.startswith(_TEACH_CATEGORIES) and name != "ImagicInterpolate":
        return "teach"
    if name.endswith("Invert") or (category == "InvertEdit/inversion" and not name.endswith("Sampler")
                                   and name not in ("ApplyInversion",)):
        return "invert"
    return "edit"


def _one_save(nodes: list[dict], result: str | None, name: str) -> None:
    """Keep the Save Image ``result`` (or the only one); the others become Preview Images."""
    savers = [n for n in nodes if n["type"] == "SaveImage"]
    if result is None:
        if len(savers) != 1:
            raise ValueError(f"workflow {name!r} saves {len(savers)} images ({[n['key'] for n in savers]}): "
                             "give its description a 'result' (the key of the Save Image to keep)")
        result = savers[0]["key"]
    if result not in {n["key"] for n in savers}:
        raise ValueError(f"workflow {name!r}: result {result!r} is not one of its Save Image nodes")
    for n in savers:
        if n["key"] != result:
            n["type"] = "PreviewImage"
            n.pop("widgets", None)


def _string_widgets(node: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    specs = {**(info.get("input", {}).get("required") or {}), **(info.get("input", {}).get("optional") or {})}
    return [w for w, v in (node.get("widgets") or {}).items()
            if w in specs and isinstance(specs[w], (list, tuple)) and specs[w] and specs[w][0] == "STRING"
            and isinstance(v, str) and len(v.split()) >= PROMPT_WORDS]


def _prompts_once(nodes: list[dict], node_info: Callable[[str], Mapping[str, Any] | None]) -> None:
    """Each prompt is typed once, into a String (Multiline) node: a titled CLIP Text Encode's text
    ("Source prompt") moves into one of that title, which feeds the encoder (now "Encode: source
    prompt", collapsed) and every other node the same words were typed into (Attention Inject's
    source_prompt, say); a text typed into two other nodes gets one titled "Prompt"."""
    holders: dict[str, list[tuple[dict, str]]] = {}
    for n in nodes:
        info = node_info(n["type"]) if n["type"] not in ("MarkdownNote", "Note") else None
        if info is None or n["type"] == "SaveImage":
            continue
        for widget in _string_widgets(n, info):
            holders.setdefault(n["widgets"][widget], []).append((n, widget))
    added = []
    for i, (text, where) in enumerate(holders.items()):
        encoders = [n for n, _ in where if n["type"] == "CLIPTextEncode" and n.get("title")]
        if len(where) < 2 and not encoders:
            continue
        title = encoders[0]["title"] if encoders else "Prompt"
        key = f"text_{i}"
        added.append({"key": key, "type": "PrimitiveStringMultiline", "widgets": {"value": text}, "title": title,
                      "stage": "load"})
        for n, widget in where:
            del n["widgets"][widget]
            n.setdefault("inputs", {})[widget] = (key, "STRING")
            n.setdefault("linked_values", {})[widget] = text   # what the linked widget shows: the same words
            if n in encoders:
                n["title"] = f"Encode: {title[:1].lower()}{title[1:]}"
                n["collapsed"] = True
    # the strings go before the first node they feed (the canvas numbers nodes in this order)
    for node in added:
        first = min(i for i, n in enumerate(nodes) if any(v == (node["key"], "STRING") for v in (n.get("inputs") or {}).values()))
        nodes.insert(first, node)


def template_doc_url(name: str) -> str:
    return f"{REPOSITORY}/blob/main/{TEMPLATE_DOCS}/{quote(name)}.md"


CHECKPOINT_LINE = ("**To run it**: choose your model (**Load Checkpoint**) and picture (**Load Image**), then write "
                   "the prompts.")
FILES_LINE = ("**To run it**: choose your model's files (**Load Diffusion Model**, **Load CLIP**, **Load VAE**) and "
              "picture (**Load Image**), then write the prompts.")
TOY_LINE = ("Runs as it is on the built-in **Toy World Model**; for your own pictures open a template named for "
            "your model (SD1.5, SDXL, Flux, SD3, Qwen-Image).")


def short_note(full: str, name: str, summary: str, on_checkpoint: bool | str, how: str = "") -> str:
    """The canvas note: the full note's heading, what the technique does (its row's one sentence), how
    to run it in one line (``how``, or the line for a checkpoint's, a model of separate files'
    (``on_checkpoint`` "files") or the toy model's templates), and a link to the full text
    (``docs/templates/<name>.md``)."""
    lines = full.strip().split("\n")
    heading = lines[0] if lines and lines[0].startswith("#") else f"# {name}"
    how = how or (FILES_LINE if on_checkpoint == "files" else CHECKPOINT_LINE if on_checkpoint else TOY_LINE)
    return "\n\n".join([heading, summary, how, f"[Settings, papers and what to expect]({template_doc_url(name)})"])


NOTE_WIDTH = 420.0
NOTE_CHARS = 52        # characters a line of the note's width holds (the frontend's Markdown at 14 px)


def note_size(text: str) -> list[float]:
    """A size that shows the whole note: its lines wrapped at ``NOTE_CHARS``, a heading taller."""
    height = 30.0
    for paragraph in text.split("\n\n"):
        plain = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", paragraph).replace("**", "")
        if plain.startswith("#"):
            height += 44.0
        else:
            height += 21.0 * -(-len(plain) // NOTE_CHARS) + 14.0
    return [NOTE_WIDTH, float(round(height))]


def styled(spec: Mapping[str, Any], name: str, node_info: Callable[[str], Mapping[str, Any] | None],
           summary: str = "") -> tuple[dict, str]:
    """The workflow description in the house style, and the note's full text (for its docs page).
    ``summary``: what the workflow's technique does, in a sentence (its row's)."""
    spec = copy.deepcopy(dict(spec))
    nodes = spec["nodes"]
    _one_save(nodes, spec.pop("result", None), name)
    how = spec.pop("how", "")
    _prompts_once(nodes, node_info)
    full = ""
    for n in nodes:
        if n["type"] in ("MarkdownNote", "Note"):
            full = full or n.get("text", "")
            on_checkpoint = "files" if any(m["type"] == "UNETLoader" for m in nodes) else \
                any(m["type"] == "CheckpointLoaderSimple" for m in nodes)
            n["text"] = short_note(n.get("text", ""), name, summary, on_checkpoint, how)
            n["size"] = note_size(n["text"])
        else:
            n.setdefault("stage", stage_of(n["type"], node_info(n["type"])))
            empty_prompt = n["type"] == "CLIPTextEncode" and (n.get("widgets") or {}).get("text") == ""
            if n["type"] in COLLAPSED or empty_prompt:
                n.setdefault("collapsed", True)
    used = {n.get("stage") for n in nodes}
    spec["stages"] = [dict(s, title=f"{i}. {s['title']}") for i, s in enumerate((s for s in STAGES if s["key"] in used), 1)]
    return spec, full
