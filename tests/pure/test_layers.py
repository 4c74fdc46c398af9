"""The pack's layers, read from its import statements (issue 25): the host kit
(``invertedit/hostkit/``) is the one place that imports the host (the built-in models in
``invertedit/demo/`` reach it through the kit's ``loaders``); node files declare their
schemas with the host's node API as the kit hands it on (``hostkit.schemas.io``) and reach
everything else through the kit; the pure layers (``inversion/``, ``attention/``, ``guidance/``,
``personalisation/``) import torch, numpy, einops, the standard library and each other only."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[2] / "invertedit"
HOST = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "server", "execution",
        "node_helpers", "latent_preview", "app", "utils"}
KIT = PACK / "hostkit"
NODES = PACK / "nodes"
DEMO = PACK / "demo"
PURE = [PACK / "inversion", PACK / "attention", PACK / "guidance", PACK / "personalisation"]
PURE_MAY_IMPORT = {"torch", "numpy", "einops"} | set(sys.stdlib_module_names)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each absolute import in ``path`` (relative imports stay in the pack)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def test_only_the_host_kit_imports_the_host():
    wrong = []
    for path in sorted(PACK.rglob("*.py")):
        for line, module in imports(path):
            if module.split(".")[0] not in HOST or inside(path, KIT):
                continue
            wrong.append(f"{path.relative_to(PACK.parent)}:{line} imports {module}")
    assert not wrong, "only invertedit/hostkit/ (the host kit) may import the host:\n" + "\n".join(wrong)


def test_the_pure_layers_import_only_torch_numpy_and_einops():
    wrong = [f"{path.relative_to(PACK.parent)}:{line} imports {module}"
             for folder in PURE for path in sorted(folder.rglob("*.py"))
             for line, module in imports(path) if module.split(".")[0] not in PURE_MAY_IMPORT]
    assert not wrong, "the pure layers import torch, numpy and einops only:\n" + "\n".join(wrong)


def test_the_rules_see_the_files_they_judge():
    """The checks above would pass on an empty tree: they must find the kit, the nodes and the pure code."""
    assert len(list(KIT.glob("*.py"))) > 10 and len(list(NODES.glob("*.py"))) > 10 and len(list(DEMO.glob("*.py"))) > 4
    assert all(len(list(folder.glob("*.py"))) > 2 for folder in PURE)
    assert any(module.startswith("comfy") for path in KIT.glob("*.py") for _, module in imports(path))
