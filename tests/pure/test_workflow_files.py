"""The shipped templates in the house style (issue 79; workshop/workflow_style.py), read as files: one Save
Image, every node in a coloured group, a saved view, a short note that links to its full text, each prompt
typed once, the image's shape kept. What the frontend makes of them: tests/browser/test_frontend.py."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from invertedit.attention.block_presets import LAYERVERSE
from workshop.workflow_style import NOTE_WORDS, PROMPT_WORDS, TEMPLATE_DOCS, _one_save, stage_of

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "example_workflows").glob("*.json"))


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_template_reads_as_an_artist_needs(path):
    wf = _load(path)
    nodes = [n for n in wf["nodes"] if n["type"] not in ("MarkdownNote", "Note")]
    assert [n["type"] for n in nodes].count("SaveImage") == 1, "one Save Image: the result; the rest previewed"
    groups = wf["groups"]
    assert len(groups) >= 2 and all(g["color"] for g in groups)
    for n in nodes:
        x0, y0 = n["pos"][0], n["pos"][1] - 30
        x1, y1 = n["pos"][0] + n["size"][0], n["pos"][1] + (0 if n["flags"].get("collapsed") else n["size"][1])
        assert any(g["bounding"][0] <= x0 and g["bounding"][1] <= y0 and x1 <= g["bounding"][0] + g["bounding"][2]
                   and y1 <= g["bounding"][1] + g["bounding"][3] for g in groups), f"node {n['id']} is in no group"
    assert 0.4 <= wf["extra"]["ds"]["scale"] <= 1.0
    (note,) = [n for n in wf["nodes"] if n["type"] == "MarkdownNote"]
    text = note["widgets_values"][0]
    assert len(re.sub(r"\]\([^)]*\)", "]", text).split()) <= NOTE_WORDS
    (link,) = re.findall(r"\]\((https://[^)]*)\)", text)
    page = REPO / TEMPLATE_DOCS / (unquote(link.rsplit("/", 1)[1]))
    assert unquote(link.rsplit("/", 1)[1]) == path.stem + ".md" and page.is_file()
    # each prompt typed once: no text of PROMPT_WORDS words or more is held by two widgets (a published block
    # allocation's name is a choice, not typed text: LayerVerse's preset on Flow Invert's keeper and on its node)
    linked = {n["id"] for n in nodes if any(i.get("widget") and i.get("link") is not None for i in n.get("inputs") or [])}
    typed = [v for n in nodes if n["id"] not in linked
             for v in (n["widgets_values"] if isinstance(n["widgets_values"], list) else [])
             if isinstance(v, str) and len(v.split()) >= PROMPT_WORDS and v not in LAYERVERSE]
    assert len(typed) == len(set(typed)), f"typed twice: {sorted(t for t in set(typed) if typed.count(t) > 1)}"
    edits_your_picture = any("Invert" in n["type"].removeprefix("InvertEdit") or n["type"] == "InvertEditFlowEdit"
                             for n in nodes)
    if edits_your_picture and any(n["type"] in ("CheckpointLoaderSimple", "UNETLoader") for n in nodes):   # its shape kept
        # (the personalisation templates square their training photos: the trainers' crops)
        assert "ImageScale" not in [n["type"] for n in nodes]
        # an instruction editor's (reference latents: Kontext, Qwen-Image-Edit) at the picture's own size, the rest at
        # the family's pixels
        instruction = "ReferenceLatent" in [n["type"] for n in nodes]
        assert [n["type"] for n in nodes].count("ImageScaleToTotalPixels") == (0 if instruction else 1)
        assert "FluxKontextImageScale" not in [n["type"] for n in nodes]


def test_templates_on_separate_files_say_so():
    """A template for a model shipped as separate files (Qwen-Image, Qwen-Image-Edit: Load Diffusion Model, Load
    CLIP, Load VAE; Flux.1 Kontext: DualCLIPLoader in Load CLIP's place; as ComfyUI's own examples load them) tells
    the artist to choose those three, not a checkpoint, and every node that takes its CLIP or VAE takes the loader's."""
    separate = [p for p in FILES if any(n["type"] == "UNETLoader" for n in _load(p)["nodes"])]
    assert {p.stem for p in separate} >= {"Qwen-Image - FlowEdit", "Qwen-Image - Prompt-to-Prompt edit", "Qwen-Image - KV-Edit",
                                          "Kontext - Instruction lock", "Qwen-Image-Edit - Instruction lock"}
    for path in separate:
        wf = _load(path)
        types = [n["type"] for n in wf["nodes"]]
        clip = "DualCLIPLoader" if path.stem.startswith("Kontext - ") else "CLIPLoader"
        assert "CheckpointLoaderSimple" not in types and types.count(clip) == types.count("VAELoader") == 1
        (note,) = [n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "MarkdownNote"]
        shown = "DualCLIPLoader" if clip == "DualCLIPLoader" else "Load CLIP"
        assert f"**Load Diffusion Model**, **{shown}**, **Load VAE**" in note and "Load Checkpoint" not in note
        by_id = {n["id"]: n for n in wf["nodes"]}
        for link in wf["links"]:
            _, source, _, _, _, kind = link
            if kind in ("CLIP", "VAE"):
                assert by_id[source]["type"] == {"CLIP": clip, "VAE": "VAELoader"}[kind], (path.stem, link)


def test_one_save_keeps_the_result_and_previews_the_rest():
    nodes = [{"key": "a", "type": "SaveImage", "widgets": {"filename_prefix": "x/a"}, "title": "A"},
             {"key": "b", "type": "SaveImage", "widgets": {"filename_prefix": "x/b"}, "title": "B"}]
    with pytest.raises(ValueError, match="saves 2 images"):
        _one_save([dict(n) for n in nodes], None, "w")
    with pytest.raises(ValueError, match="result 'c' is not one of"):
        _one_save([dict(n) for n in nodes], "c", "w")
    kept = [dict(n) for n in nodes]
    _one_save(kept, "b", "w")
    assert [(n["type"], n.get("widgets"), n["title"]) for n in kept] == [
        ("PreviewImage", None, "A"), ("SaveImage", {"filename_prefix": "x/b"}, "B")]


@pytest.mark.parametrize("class_type, category, stage", [
    ("LoadImage", "image", "load"), ("VAEDecode", "latent", "result"), ("KSamplerAdvanced", "sampling", "edit"),
    ("InvertEditDDIMInvert", "InvertEdit/inversion", "invert"), ("InvertEditFlowInvert", "InvertEdit/flow", "invert"),
    ("InvertEditDirectInversion", "InvertEdit/inversion", "invert"), ("InvertEditApplyInversion", "InvertEdit/inversion", "edit"),
    ("InvertEditEDICTSampler", "InvertEdit/inversion", "edit"), ("InvertEditFlowEdit", "InvertEdit/flow", "edit"),
    ("InvertEditDreamBoothLoRA", "InvertEdit/personalise", "teach"), ("InvertEditImagicInterpolate", "InvertEdit/imagic", "edit"),
])
def test_stage_of(class_type, category, stage):
    assert stage_of(class_type, {"category": category}) == stage
