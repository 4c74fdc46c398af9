#!/usr/bin/env python
"""Write docs/nodes.md, the reference of every node, from the nodes' own schemas, and the
technique table of docs/techniques.md from the technique table (``invertedit/techniques/``); check that the
README's node list names every node and that the counts it states are true.

The host is booted in this process (with throw-away input/output folders) and each InvertEdit
node is described as the host describes it to the editor (its ``/object_info`` entry: display
name, category, description, inputs with their types, defaults, ranges and tooltips, outputs
with their tooltips). So the reference says exactly what the editor shows; change a tooltip in
the node file, then regenerate.

    python -m workshop.make_docs            # write docs/nodes.md and the technique tables
    python -m workshop.make_docs --check    # exit 1 if any of them is out of date

tests/host/test_docs.py runs the same check.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NODES_MD = REPO / "docs" / "nodes.md"
README = REPO / "README.md"
PREFIX = "InvertEdit"          # the class names of the pack's nodes start with it
CATEGORY_ORDER = ("InvertEdit/inversion", "InvertEdit/attention", "InvertEdit/guidance", "InvertEdit/flow",
                  "InvertEdit/testing")
GENERATOR = "python -m workshop.make_docs"
TABLE = REPO / "tests" / "host" / "test_bad_inputs.py"   # the bad-input table: what each node refuses
TECHNIQUES_MD = REPO / "docs" / "techniques.md"
BEGIN = "<!-- technique table: written by python -m workshop.make_docs from invertedit/techniques/ -->"
END = "<!-- end of the technique table -->"


# ----------------------------------------------------------------------------- collecting

def node_infos(host) -> dict[str, dict[str, Any]]:
    """The ``/object_info`` entries of the pack's nodes, in registration order."""
    from workshop.headless import runner

    return {name: runner.node_info(name, host)
            for name in host.nodes.NODE_CLASS_MAPPINGS if name.startswith(PREFIX)}


def _host_lists() -> dict[tuple, str]:
    """Option lists that belong to the host (they change with its version): named, not listed."""
    try:
        import comfy.samplers as samplers
    except ImportError:  # pragma: no cover  (the host is booted before this is called)
        return {}
    return {tuple(samplers.KSampler.SCHEDULERS): "the host's schedulers",
            tuple(samplers.KSampler.SAMPLERS): "the host's samplers"}


# ----------------------------------------------------------------------------- rendering

def _cell(text: Any) -> str:
    """Text for one markdown table cell."""
    s = str(text).replace("\r", "").strip()
    s = re.sub(r"\s*\n\s*", " ", s)
    return s.replace("|", "\\|")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return f"`{value}`" if value.strip() else "(empty)"
    return f"`{value}`"


def _anchor(title: str) -> str:
    """GitHub's heading anchor."""
    s = title.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _input_row(name: str, spec: list, optional: bool, host_lists: dict[tuple, str]) -> str:
    kind = spec[0]
    opts: dict = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(kind, list):             # V1 style combo: the options are the type
        opts = {**opts, "options": kind}
        kind = "COMBO"
    type_text = kind
    if kind == "COMBO":
        options = opts.get("options") or []
        if "default" not in opts or opts.get("default") is None:
            type_text = "file (the host lists them)"
        elif tuple(options) in host_lists:
            type_text = host_lists[tuple(options)]
        else:
            type_text = " / ".join(f"`{o}`" for o in options)
    default = _value(opts["default"]) if opts.get("default") is not None else ""
    if kind in ("INT", "FLOAT") and ("min" in opts or "max" in opts):
        default += f" ({opts.get('min', '')} to {opts.get('max', '')})" if default else f"{opts.get('min', '')} to {opts.get('max', '')}"
    label = f"`{name}`" + (" (optional)" if optional else "")
    return f"| {label} | {_cell(type_text)} | {_cell(default)} | {_cell(opts.get('tooltip') or '')} |"


def readable(pattern: str) -> str:
    """A case's expected message (a regex) as text: wildcards become an ellipsis, escapes go."""
    text = re.sub(r"\.\*\??", " … ", pattern).replace(r"\d+", "N")
    text = re.sub(r"\\(.)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def message_name(host, class_type: str) -> str:
    """The name a node's messages start with: its ``NAME`` (MasaCtrl's is shorter than its display
    name, "Mutual Self-Attention (MasaCtrl)"), else its display name."""
    cls = host.nodes.NODE_CLASS_MAPPINGS[class_type]
    return getattr(cls, "NAME", None) or cls.define_schema().display_name


def refusals() -> dict[str, list[tuple[str, str]]]:
    """The bad-input table's cases by the node that refuses them (the message's "Node:" prefix):
    (case id, message as text). The table is the tests' (``CASES``), loaded by path."""
    name = "invertedit_bad_input_table"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, TABLE)
        module = sys.modules[name] = importlib.util.module_from_spec(spec)   # (dataclasses look it up there)
        spec.loader.exec_module(module)
    out: dict[str, list[tuple[str, str]]] = {}
    for name, _, message in module.CASES:
        node, _, text = readable(message).partition(": ")
        out.setdefault(node, []).append((name, text))
    return out


def render_node(info: dict[str, Any], host_lists: dict[tuple, str], refused: list[tuple[str, str]] = ()) -> str:
    lines = [f"### {info['display_name']}", "",
             f"`{info['name']}` in `{info['category']}`", "",
             _cell(info.get("description") or "") or "(no description)", ""]
    inputs = info.get("input", {})
    order = info.get("input_order", {})
    rows = []
    for section in ("required", "optional"):
        for name in order.get(section, list(inputs.get(section, {}))):
            rows.append(_input_row(name, inputs[section][name], section == "optional", host_lists))
    if rows:
        lines += ["| input | type | default (range) | tooltip |", "|---|---|---|---|", *rows, ""]
    else:
        lines += ["No inputs.", ""]
    outputs = list(info.get("output", []))
    if outputs:
        names = list(info.get("output_name", outputs))
        tips = [tip or "" for tip in info.get("output_tooltips") or []] + [""] * len(outputs)
        lines += ["| output | type | tooltip |", "|---|---|---|"]
        lines += [f"| {_cell(n)} | {_cell(t)} | {_cell(tip)} |" for n, t, tip in zip(names, outputs, tips)]
        lines.append("")
    elif info.get("output_node"):
        lines += ["No outputs: it writes a file.", ""]
    if refused:
        lines += ["Refuses (each a case of the bad-input table, `tests/host/test_bad_inputs.py`; the message it gives):", ""]
        lines += [f"- `{name}`: {_cell(text)}" for name, text in refused]
        lines.append("")
    return "\n".join(lines)


def render_nodes(host) -> str:
    """The text of docs/nodes.md for the booted host."""
    infos = node_infos(host)
    host_lists = _host_lists()
    categories = sorted({i["category"] for i in infos.values()},
                        key=lambda c: (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else len(CATEGORY_ORDER), c))
    out = ["# Nodes", "",
           f"<!-- Generated by `{GENERATOR}` from the nodes' schemas: do not edit by hand. -->", "",
           "Every node of the pack as the editor shows it: description, inputs with their defaults and "
           "tooltips, outputs. Generated from the node files, `invertedit/techniques/<name>/nodes.py`; "
           f"`{GENERATOR} --check` (and `tests/host/test_docs.py`) say when it is out of date. How each "
           "technique works and how it compares with its paper and reference code: "
           "[techniques.md](techniques.md), [faithfulness.md](faithfulness.md).", ""]
    for category in categories:
        members = [i for i in infos.values() if i["category"] == category]
        out.append(f"- `{category}`: " + ", ".join(f"[{i['display_name']}](#{_anchor(i['display_name'])})" for i in members))
    out.append("")
    refused = refusals()
    for category in categories:
        out += [f"## `{category}`", ""]
        out += [render_node(i, host_lists, refused.get(message_name(host, i["name"]), ())) for i in infos.values()
                if i["category"] == category]
    return "\n".join(out).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- the technique table

def _workflow_link(name: str, docs: bool) -> str:
    folder = "../example_workflows" if docs else "example_workflows"
    return f"[{name}]({folder}/{name.replace(' ', '%20').replace('+', '%2B')}.json)"


def render_techniques(host, docs: bool = False) -> str:
    """The technique table in Markdown: one row per technique, its nodes by their display names."""
    from invertedit.techniques import TECHNIQUES

    names = {node_id: info["display_name"] for node_id, info in node_infos(host).items()}
    lines = ["| technique | nodes | paper | defaults | cost (UNet rows, N steps) | example |", "|---|---|---|---|---|---|"]
    for t in TECHNIQUES:
        nodes = ", ".join(f"**{names[n]}**" for n in t.nodes) or "stock KSampler"
        example = _workflow_link(t.workflows[0], docs) if t.workflows else ""
        lines.append("| " + " | ".join(_cell(c) for c in (t.name, nodes, t.paper or "(the pack's)", t.defaults, t.cost))
                     + f" | {example} |")
    return "\n".join(lines)


def with_techniques(text: str, table: str) -> str:
    """``text`` with the region between ``BEGIN`` and ``END`` replaced by ``table``."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + "\n" + text[end:]


def technique_pages(host) -> dict[Path, str]:
    """docs/techniques.md as it should read, its technique table current (the README links to it)."""
    return {TECHNIQUES_MD: with_techniques(TECHNIQUES_MD.read_text(encoding="utf-8"), render_techniques(host, docs=True))}


# ----------------------------------------------------------------------------- checking

WORKFLOWS_DIR = REPO / "example_workflows"
#: "<number> <what>" in the README: what it counts
_COUNTED = re.compile(r"\b(\d+)\s+(?:shipped\s+|example\s+)?(templates|workflows|nodes)\b")
_TEMPLATE = re.compile(r"\*\*((?:SD1\.5|SDXL|Flux|SD3) - [^*]+)\*\*")


def readme_untruths(host, readme: Path = README) -> list[str]:
    """What the README states that the code does not: a count of templates, workflows or nodes other than the
    pack's, a template named in bold that does not ship, a workflow named in its table that does not ship."""
    text = readme.read_text(encoding="utf-8")
    shipped = {p.stem for p in WORKFLOWS_DIR.glob("*.json")}
    actual = {"templates": len(shipped), "workflows": len(shipped), "nodes": len(node_infos(host))}
    found = [f"README.md says {n} {what}; the pack has {actual[what]}" for n, what in _COUNTED.findall(text)
             if int(n) != actual[what]]
    found += [f"README.md names the template {name!r}, which does not ship" for name in _TEMPLATE.findall(text)
              if name not in shipped]
    for line in text.splitlines():
        if line.startswith("|"):
            found += [f"README.md's table names the workflow {name!r}, which does not ship"
                      for name in re.findall(r"`([a-z0-9_]+)`", line) if name not in shipped]
    return found


def missing_from_readme(host, readme: Path = README) -> list[str]:
    """Display names of the pack's nodes that the README's node list does not name."""
    text = readme.read_text(encoding="utf-8")
    return [i["display_name"] for i in node_infos(host).values() if f"**{i['display_name']}**" not in text]


def problems(host) -> list[str]:
    found = []
    current = NODES_MD.read_text(encoding="utf-8") if NODES_MD.is_file() else None
    if current != render_nodes(host):
        found.append(f"{NODES_MD.relative_to(REPO)} is out of date: run {GENERATOR}")
    missing = missing_from_readme(host)
    if missing:
        found.append("README.md's node list does not name (in bold): " + ", ".join(missing))
    found += readme_untruths(host)
    for path, text in technique_pages(host).items():
        if path.read_text(encoding="utf-8") != text:
            found.append(f"{path.relative_to(REPO)}'s technique table is out of date: run {GENERATOR}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.make_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare with docs/nodes.md; exit 1 if it differs")
    args = parser.parse_args(argv)

    from workshop.headless.boot import boot

    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="invertedit-docs-")))
    if args.check:
        found = problems(host)
        for line in found:
            print(line, file=sys.stderr)
        if not found:
            print(f"{NODES_MD.relative_to(REPO)} is current")
        return 1 if found else 0
    NODES_MD.parent.mkdir(parents=True, exist_ok=True)
    text = render_nodes(host)
    changed = not NODES_MD.is_file() or NODES_MD.read_text(encoding="utf-8") != text
    NODES_MD.write_text(text, encoding="utf-8", newline="\n")
    print(f"{'wrote' if changed else 'unchanged:'} {NODES_MD.relative_to(REPO)} ({len(node_infos(host))} nodes)")
    for path, page in technique_pages(host).items():
        changed = path.read_text(encoding="utf-8") != page
        path.write_text(page, encoding="utf-8", newline="\n")
        print(f"{'wrote' if changed else 'unchanged:'} {path.relative_to(REPO)}'s technique table")
    for name in missing_from_readme(host):
        print(f"note: README.md's node list does not name {name!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
