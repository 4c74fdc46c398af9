"""The Comfy Registry's fields in pyproject.toml (what the Registry and ComfyUI-Manager show): a description
that names every model family the pack edits, a display name, and an icon whose file is in this repository."""
from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="Python 3.11's tomllib reads pyproject.toml")
REPO = Path(__file__).resolve().parents[2]


def test_the_registry_fields_are_complete():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    description, comfy = project["project"]["description"], project["tool"]["comfy"]
    for family in ("SD1.x", "SD2.x", "SDXL", "Flux.1", "SD3"):
        assert family in description, f"pyproject's description does not name {family}"
    for technique in ("FlowEdit", "KV-Edit", "Prompt-to-Prompt", "DreamBooth"):
        assert technique in description, f"pyproject's description does not name {technique}"
    assert comfy["DisplayName"].strip()
    icon = comfy["Icon"]
    prefix = "https://raw.githubusercontent.com/invertedit/ComfyUI-InvertEdit/main/"
    assert icon.startswith(prefix) and (REPO / icon.removeprefix(prefix)).is_file(), icon
