"""The pack's layers, read from its import statements (issues 25 and 76): the host kit
(``invertedit/hostkit/``) is the one place that imports the host (the built-in models in
``invertedit/demo/`` reach it through the kit's ``loaders``), and it is generic: it imports no
technique. A technique's folder (``invertedit/techniques/<name>/``) imports neither the host nor
another technique: its host glue (``glue.py``) and its nodes (``nodes.py``) reach the host through
the kit, its pure modules (every other file) import torch, numpy, einops, the standard library,
the generic pure layers and its own pure modules and row only. The generic pure layers
(``inversion/``, ``attention/``, ``guidance/``, ``personalisation/``) import torch, numpy, einops,
the standard library and each other; the row type, the refusals and the workflows' parts
(``technique_row.py``, ``refusals.py``, ``workflows/``) are plain Python."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[2] / "invertedit"
HOST = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "server", "execution",
        "node_helpers", "latent_preview", "app", "utils"}
KIT = PACK / "hostkit"
TECHNIQUES = PACK / "techniques"
DEMO = PACK / "demo"
PURE = [PACK / "inversion", PACK / "attention", PACK / "guidance", PACK / "personalisation"]
PLAIN = [PACK / "technique_row.py", PACK / "refusals.py", PACK / "workflows"]
PURE_MAY_IMPORT = {"torch", "numpy", "einops"} | set(sys.stdlib_module_names)
GLUE = {"glue.py", "nodes.py"}   # a technique's files that may reach the host kit


def imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, module, level) of each import in ``path``; a relative import's module is resolved
    against the pack ("invertedit.x.y"), an absolute one as written."""
    package = path.relative_to(PACK.parent).with_suffix("").parts[:-1]   # the folder (an __init__.py's own)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or "", 0))
                continue
            base = ".".join(package[:len(package) - (node.level - 1)])
            module = f"{base}.{node.module}" if node.module else base
            found += [(node.lineno, f"{module}.{alias.name}", node.level) for alias in node.names]
    return found


def inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def _folders() -> list[Path]:
    return sorted(p for p in TECHNIQUES.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def test_only_the_host_kit_imports_the_host():
    wrong = []
    for path in sorted(PACK.rglob("*.py")):
        for line, module, level in imports(path):
            if level or module.split(".")[0] not in HOST or inside(path, KIT):
                continue
            wrong.append(f"{path.relative_to(PACK.parent)}:{line} imports {module}")
    assert not wrong, "only invertedit/hostkit/ (the host kit) may import the host:\n" + "\n".join(wrong)


def test_the_host_kit_imports_no_technique():
    wrong = [f"{path.relative_to(PACK.parent)}:{line} imports {module}"
             for path in sorted(KIT.rglob("*.py")) for line, module, _ in imports(path)
             if module.startswith("invertedit.techniques")]
    assert not wrong, "the host kit is generic: it never imports a technique's folder:\n" + "\n".join(wrong)


def test_a_technique_imports_no_other_technique():
    wrong = []
    for folder in _folders():
        for path in sorted(folder.rglob("*.py")):
            for line, module, _ in imports(path):
                parts = module.split(".")
                if parts[:2] == ["invertedit", "techniques"] and len(parts) > 2 and parts[2] != folder.name:
                    wrong.append(f"{path.relative_to(PACK.parent)}:{line} imports {module}")
    assert not wrong, ("a technique never imports another: what two share moves to a generic home (hostkit/, "
                       "inversion/, attention/, guidance/, personalisation/):\n" + "\n".join(wrong))


def _pure_module_may_import(path: Path, module: str, level: int, own: str) -> bool:
    parts = module.split(".")
    if not level:
        return parts[0] in PURE_MAY_IMPORT
    if parts[:2] == ["invertedit", "techniques"]:   # its own row, or its own pure modules
        return len(parts) > 2 and parts[2] == own and (len(parts) < 4 or f"{parts[3]}.py" not in GLUE)
    generic = {p.name for p in PURE} | {"refusals", "technique_row"}
    return len(parts) > 1 and parts[1] in generic


def test_the_pure_layers_import_only_torch_numpy_and_einops():
    wrong = [f"{path.relative_to(PACK.parent)}:{line} imports {module}"
             for folder in PURE for path in sorted(folder.rglob("*.py"))
             for line, module, level in imports(path) if not _pure_module_may_import(path, module, level, "")]
    wrong += [f"{path.relative_to(PACK.parent)}:{line} imports {module}"
              for folder in _folders() for path in sorted(folder.glob("*.py"))
              if path.name not in GLUE | {"__init__.py", "workflows.py"}
              for line, module, level in imports(path) if not _pure_module_may_import(path, module, level, folder.name)]
    assert not wrong, ("the pure layers and a technique's pure modules import torch, numpy, einops, the generic "
                       "pure layers and their own row only:\n" + "\n".join(wrong))


def test_rows_workflows_and_refusals_are_plain_python():
    """A technique's row (its ``__init__.py``) and workflows, the row type, the refusals and the
    workflows' parts import no torch and no host: the docs and the workflow writer read them without booting."""
    files = [path for folder in _folders() for path in (folder / "__init__.py", folder / "workflows.py") if path.is_file()]
    files += [path for item in PLAIN for path in ([item] if item.is_file() else sorted(item.rglob("*.py")))]
    wrong = [f"{path.relative_to(PACK.parent)}:{line} imports {module}" for path in files
             for line, module, level in imports(path)
             if (not level and module.split(".")[0] not in set(sys.stdlib_module_names))
             or (level and module.split(".")[1] not in {"technique_row", "refusals", "workflows", "demo", "techniques"})
             or (level and module.split(".")[1] == "demo" and module.split(".")[2] != "worlds")
             or (level and module.split(".")[1] == "techniques" and module.split(".")[-1] in {"nodes", "glue"})]
    assert not wrong, "rows, workflows and their parts are plain Python:\n" + "\n".join(wrong)


def test_the_rules_see_the_files_they_judge():
    """The checks above would pass on an empty tree: they must find the kit, the techniques and the pure code."""
    assert len(list(KIT.glob("*.py"))) > 10 and len(_folders()) > 30 and len(list(DEMO.glob("*.py"))) > 4
    assert all(len(list(folder.glob("*.py"))) > 2 for folder in PURE)
    assert any(module.startswith("comfy") for path in KIT.glob("*.py") for _, module, _ in imports(path))
    assert sum((folder / "glue.py").is_file() for folder in _folders()) > 15
    assert sum((folder / "workflows.py").is_file() for folder in _folders()) > 30
