"""Finding the ComfyUI host, without importing it.

Order: ``COMFYUI_PATH``; the pack's own parent ``ComfyUI/`` when the pack sits in
``custom_nodes/``; ``~/comfy/ComfyUI`` (the comfy-cli workspace). ComfyUI is not a Python
package: ``scripts/setup.sh`` registers the host it finds with the interpreter (a ``.pth``
file in site-packages naming its folder), so that ``import comfy`` and ComfyUI's ``nodes``
work without any module changing ``sys.path``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parents[2]


def _is_host(path: Path) -> bool:
    return (path / "main.py").is_file() and (path / "comfy" / "samplers.py").is_file() and (path / "nodes.py").is_file()


def _candidates() -> list[tuple[str, Path]]:
    out = []
    env = os.environ.get("COMFYUI_PATH")
    if env:
        out.append(("COMFYUI_PATH", Path(env).expanduser()))
    if PACK_DIR.parent.name == "custom_nodes":
        out.append(("the pack's parent", PACK_DIR.parent.parent))
    out.append(("~/comfy/ComfyUI", Path("~/comfy/ComfyUI").expanduser()))
    return out


def find_host() -> Path | None:
    """The ComfyUI checkout to use, or None. An explicit COMFYUI_PATH that is not a host is
    not silently replaced by another candidate."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        path = Path(env).expanduser().resolve()
        return path if _is_host(path) else None
    for _, path in _candidates():
        if _is_host(path):
            return path.resolve()
    return None


def host_missing_reason() -> str:
    looked = ", ".join(f"{name}: {path}" for name, path in _candidates())
    return f"looked at {looked}; none has main.py, nodes.py and comfy/"


def host_importable() -> Path | None:
    """The ComfyUI folder this interpreter imports ``comfy`` from (registered by setup.sh), or None."""
    spec = importlib.util.find_spec("comfy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).resolve().parent
    return root if _is_host(root) else None
