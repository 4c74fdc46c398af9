"""The technique table (``invertedit/techniques/``: one folder per technique, each with its ``ROW``)
against what it describes: the nodes the pack registers, the folders, the example workflows'
builders and the benchmarks' rows. A technique added anywhere but in its folder and the table's
list, or a row naming what does not exist, fails here."""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

from invertedit.techniques import FOLDERS, KINDS, TECHNIQUES, by_node, folder_of
from workshop import make_workflows

REPO = Path(__file__).resolve().parents[2]


def registered(host) -> list[str]:
    extension = asyncio.run(host.pack.extension.comfy_entrypoint())
    return [node.define_schema().node_id for node in asyncio.run(extension.get_node_list())]


def test_every_registered_node_is_in_exactly_one_row_and_every_row_node_is_registered(host):
    nodes = registered(host)
    listed = Counter(node for t in TECHNIQUES for node in t.nodes)
    assert sorted(set(nodes)) == sorted(listed), (set(nodes) ^ set(listed))
    assert all(count == 1 for count in listed.values()), [n for n, c in listed.items() if c > 1]


def test_the_extension_registers_the_nodes_in_the_tables_order(host):
    order = [node for t in TECHNIQUES for node in t.nodes]
    assert registered(host) == order


def test_every_row_names_its_kind_paper_and_defaults_and_lives_in_its_folder(host):
    assert len({t.name for t in TECHNIQUES}) == len(TECHNIQUES) == len(FOLDERS) == len(set(FOLDERS))
    folders = {p.name for p in (REPO / "invertedit" / "techniques").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(FOLDERS), folders ^ set(FOLDERS)   # every folder is listed, every listed one exists
    extension = asyncio.run(host.pack.extension.comfy_entrypoint())
    module_of = {node.define_schema().node_id: node.__module__ for node in asyncio.run(extension.get_node_list())}
    for t in TECHNIQUES:
        assert t.kind in KINDS, t
        assert t.defaults and t.cost and t.summary, t.name
        for node in t.nodes:   # each node registered from its technique's nodes.py
            assert module_of[node].endswith(f".techniques.{folder_of(t)}.nodes"), (t.name, node, module_of[node])


def test_the_workflow_builders_are_the_tables_workflows():
    shown = {w for t in TECHNIQUES for w in t.workflows}
    assert shown <= set(make_workflows.WORKFLOWS), shown - set(make_workflows.WORKFLOWS)
    assert set(make_workflows.WORKFLOWS) <= shown, set(make_workflows.WORKFLOWS) - shown
    assert by_node()["InvertEditAttentionInject"].workflows[0] == "Start here - Invert and edit"


def test_each_workflow_is_built_in_the_folder_of_a_technique_it_shows():
    """A workflow's builder lives beside its technique: in the folder of a row that lists it."""
    from importlib import import_module

    for t in TECHNIQUES:
        path = REPO / "invertedit" / "techniques" / folder_of(t) / "workflows.py"
        built = import_module(f"invertedit.techniques.{folder_of(t)}.workflows").WORKFLOWS if path.is_file() else {}
        assert set(built) <= set(t.workflows), f"{t.name} builds {set(built) - set(t.workflows)}, not in its row"


def test_every_benchmark_row_exists_in_its_benchmark():
    for t in TECHNIQUES:
        if t.benchmark is None:
            continue
        module, row = t.benchmark
        source = (REPO / "workshop" / "benchmarks" / f"{module}.py").read_text(encoding="utf-8")
        assert row in source, f"{t.name}: no row starting {row!r} in workshop/benchmarks/{module}.py"


NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?")


def _numbers(text: str) -> set[float]:
    return {float(n) for n in NUMBER.findall(text.replace(",", ""))}


def test_the_rows_defaults_are_the_nodes_widget_defaults_and_their_tooltips_say_them(host):
    """One source for a default: a row's ``settings`` is the node's widget default, its tooltip names
    it (``(paper: 5)``; a switch ``(paper: on)``) and the row's ``defaults`` text (the README's and techniques.md's
    column) says it."""
    from workshop.make_docs import node_infos

    infos = node_infos(host)
    checked = 0
    for t in TECHNIQUES:
        for key, value in t.settings.items():
            node, name = key.split(".")
            # one of its nodes, or (a keeper's input, hostkit/keepers.py) another technique's node it shows inputs on
            assert node in infos, f"{t.name}: {node} is no node of the pack"
            inputs = {**infos[node]["input"].get("required", {}), **infos[node]["input"].get("optional", {})}
            assert name in inputs, f"{t.name}: {node} has no input {name!r}"
            assert node in t.nodes or not any(f"{node}.{name}" in o.settings for o in TECHNIQUES if node in o.nodes), \
                f"{t.name}: {node}.{name} is also set by the node's own technique (one source)"
            spec = inputs[name][1]
            assert spec.get("default") == value, f"{t.name}: {key} defaults to {spec.get('default')!r}, the table says {value!r}"
            if isinstance(value, bool):   # a switch: "(paper: on)", and the row's text "local blend on"
                said = "on" if value else "off"
                assert f"paper: {said}" in spec.get("tooltip", ""), f"{t.name}: {key}'s tooltip does not say {said}"
                assert f"{name.replace('_', ' ')} {said}" in t.defaults, \
                    f"{t.name}: the row's defaults text does not say {key} {said}"
                checked += 1
                continue
            assert float(value) in _numbers(spec.get("tooltip", "")), f"{t.name}: {key}'s tooltip does not say {value:g}"
            assert float(value) in _numbers(t.defaults), f"{t.name}: the row's defaults text does not say {key} = {value:g}"
            checked += 1
    assert checked >= 40


# Inputs that say where on the picture, in pixels (a spatial edit's offset): a quick run's picture is QUICK_SIZE px,
# so its values follow the picture's size, not the amount of work.
PICTURE_GEOMETRY = ("dx", "dy")


def test_the_quick_inputs_are_inputs_of_the_rows_nodes_and_cut_the_work(host):
    from workshop.make_docs import node_infos

    infos = node_infos(host)
    for t in TECHNIQUES:
        for node, values in t.quick.items():
            assert node in t.nodes, f"{t.name}: {node} is not one of its nodes"
            inputs = {**infos[node]["input"].get("required", {}), **infos[node]["input"].get("optional", {})}
            for name, value in values.items():
                assert name in inputs, f"{t.name}: {node} has no input {name!r}"
                default = inputs[name][1].get("default")
                if name in PICTURE_GEOMETRY:   # an offset in pixels follows the quick run's smaller picture, not the work
                    continue
                assert value <= default, f"{t.name}: a quick run sets {node}.{name} to {value}, above its default {default}"
