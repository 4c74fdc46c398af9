#!/usr/bin/env python
"""Write the pack's canvas workflows: example_workflows/<name>.json (the folder the template browser reads).

Each workflow is described in a few lines by its technique, in ``invertedit/techniques/<name>/workflows.py``
(from the shared parts in ``invertedit/workflows/``), and turned into the editor's format here with
``workshop.headless.canvas.build_canvas`` and the node definitions of the booted ComfyUI, so the files
match the nodes as they are. The tests (tests/host/test_workflows.py) execute every file.

Most run on the built-in Toy World Model. A technique's ``CHECKPOINT`` workflows are for the user's own
model: the stock Load Checkpoint (or, for Qwen-Image, Load Diffusion Model, Load CLIP and Load VAE), Load Image
and Scale Image to Total Pixels at the family's size (SD1.5 0.25 MP, the others 1 MP), named for the template browser ("SD1.5 - Prompt-to-Prompt edit"); the tests and
the card pictures run them on the built-in models (the runner's ``builtin``, ``builtin_for`` and
``toy_overrides``).

A description with a ``subgraph`` (``{"name", "description", "promote"}``) is written as a one-node template:
its edit made one subgraph node after ``build_canvas`` (``workshop.headless.subgraphs.apply_subgraph``).

    python -m workshop.make_workflows            # write all
    python -m workshop.make_workflows --check    # exit 1 if a file differs from what would be written
    python -m workshop.make_workflows "SD1.5 - LEDITS++ edit"   # only this one
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from invertedit.techniques import FOLDERS, TECHNIQUES
from invertedit.workflows.checkpoint import SCHEDULES, Family  # noqa: F401 (the families' schedules, for the tools)
from workshop.headless.canvas import build_canvas
from workshop.headless.subgraphs import apply_subgraph
from workshop.workflow_style import TEMPLATE_DOCS, styled

_MODULES = [import_module(f"invertedit.techniques.{folder}.workflows") for folder in FOLDERS
            if find_spec(f"invertedit.techniques.{folder}.workflows") is not None]

#: every workflow: name -> builder (``{"nodes": [...]}``), in the technique table's order
WORKFLOWS = {name: build for module in _MODULES for name, build in module.WORKFLOWS.items()}
#: the workflows for the user's own checkpoint: name (the template browser's card title) -> (builder, toy
#: overrides, quick overrides)
CHECKPOINT_WORKFLOWS = {name: (WORKFLOWS[name], *entry) for module in _MODULES
                        for name, entry in getattr(module, "CHECKPOINT", {}).items()}
#: what each workflow's technique does, in a sentence (the row of the technique whose folder writes it)
SUMMARIES = {name: TECHNIQUES[FOLDERS.index(module.__name__.split(".")[-2])].summary
             for module in _MODULES for name in module.WORKFLOWS}
#: the Save Image a workflow with several keeps (the others become Preview Images): name -> node key
RESULTS = {name: key for module in _MODULES for name, key in getattr(module, "RESULTS", {}).items()}
#: the toy workflows' quick overrides (fewer steps for the test suite's run)
QUICK_TOY_WORKFLOWS = {name: entry for module in _MODULES for name, entry in getattr(module, "QUICK_TOY", {}).items()}

# The built-in model each checkpoint workflow runs on in the tests and for its card picture (the
# runner's ``builtin``): the Toy World Model; the Flux workflows on its flow world (a guidance-distilled
# Flux-architecture DiT, so they run as they would on Flux.1 dev), the SD3 ones on the tiny random SD3
# demo model (no trained SD3 toy yet: they test the mechanics, their pictures are noise).
CHECKPOINT_BUILTINS = {
    **{name: "toy-flow" for name in CHECKPOINT_WORKFLOWS if name.startswith("Flux - ")},
    **{name: "demo-sd3" for name in CHECKPOINT_WORKFLOWS if name.startswith("SD3 - ")},
    # the Qwen-Image ones on the Demo Model's tiny random Qwen-Image (its MMDiT, Qwen2.5-VL text encoder with the real
    # tokenizer, Wan 2.1 VAE: the mechanics; its pictures are noise)
    **{name: "demo-qwen-image" for name in CHECKPOINT_WORKFLOWS if name.startswith("Qwen-Image - ")},
    # a technique's own (its workflows.py's CHECKPOINT_BUILTIN): the personalisation templates on the one-object world
    **{name: builtin for module in _MODULES for name, builtin in getattr(module, "CHECKPOINT_BUILTIN", {}).items()},
}


TOY_BUILTIN = "toy"   # the runner's builtin that runs the checkpoint workflows: the Toy World Model, two objects, 512 px


def builtin_for(name: str) -> str:
    """The runner's ``builtin`` that runs checkpoint workflow ``name``."""
    return CHECKPOINT_BUILTINS.get(name, TOY_BUILTIN)


def toy_overrides(name: str, quick: bool = False) -> dict:
    """The runner's ``overrides`` that run workflow ``name`` on the Toy World Model (with
    ``builtin=TOY_BUILTIN``): the toy world's prompts, and with ``quick`` fewer steps (the tests).
    For a workflow built on the toy model: nothing, or with ``quick`` its ``QUICK_TOY_WORKFLOWS``."""
    if name not in CHECKPOINT_WORKFLOWS:
        return {ref: dict(values) for ref, values in QUICK_TOY_WORKFLOWS.get(name, {}).items()} if quick else {}
    _, toy, fast = CHECKPOINT_WORKFLOWS[name]
    out = {ref: dict(values) for ref, values in toy.items()}
    if quick:
        for ref, values in fast.items():
            out.setdefault(ref, {}).update(values)
    return out


def render(name: str, node_info) -> tuple[str, str]:
    """The workflow file's text, and its docs page's (the note's full text)."""
    spec = WORKFLOWS[name]()
    spec.setdefault("result", RESULTS.get(name))
    spec, note = styled(spec, name, node_info, SUMMARIES.get(name, ""))
    page = (f"# Template: {name}\n\n_The note of `example_workflows/{name}.json` in full (the canvas shows its first "
            f"lines). Written by `python -m workshop.make_workflows`._\n\n" + "\n".join(note.strip().split("\n")[1:]).strip()
            + "\n")
    return json.dumps(apply_subgraph(spec, build_canvas(spec, node_info), node_info), indent=2, ensure_ascii=False) + "\n", page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    parser.add_argument("names", nargs="*", help=f"workflows to write (default: all: {', '.join(WORKFLOWS)})")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in WORKFLOWS]
    if unknown:
        parser.error(f"unknown workflow(s) {unknown}; known: {', '.join(WORKFLOWS)}")

    from workshop.headless.boot import boot
    from workshop.headless.runner import node_info

    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-make-workflows-"))

    def info(class_type):
        return node_info(class_type, host) if class_type in host.nodes.NODE_CLASS_MAPPINGS else None

    stale = []
    for name in args.names or WORKFLOWS:
        text, page = render(name, info)
        for path, content in ((REPO / "example_workflows" / f"{name}.json", text),
                              (REPO / TEMPLATE_DOCS / f"{name}.md", page)):
            if args.check:
                if not path.is_file() or path.read_text(encoding="utf-8") != content:
                    stale.append(str(path.relative_to(REPO)))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print("out of date (run python -m workshop.make_workflows): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
