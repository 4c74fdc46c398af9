"""The technique table (``invertedit/techniques.py``) against what it describes: the nodes the
pack registers, its pure modules, the example workflows' builders and the benchmarks' rows. A
technique added anywhere but in the table, or a row naming what does not exist, fails here."""
from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from invertedit.techniques import KINDS, TECHNIQUES, by_node
from workshop import make_workflows

REPO = Path(__file__).resolve().parents[2]


def registered(host) -> list[str]:
    extension = asyncio.run(host.pack.nodes.comfy_entrypoint())
    return [node.define_schema().node_id for node in asyncio.run(extension.get_node_list())]


def test_every_registered_node_is_in_exactly_one_row_and_every_row_node_is_registered(host):
    nodes = registered(host)
    listed = Counter(node for t in TECHNIQUES for node in t.nodes)
    assert sorted(set(nodes)) == sorted(listed), (set(nodes) ^ set(listed))
    assert all(count == 1 for count in listed.values()), [n for n, c in listed.items() if c > 1]


def test_the_extension_registers_the_nodes_in_the_tables_order(host):
    order = [node for t in TECHNIQUES for node in t.nodes]
    assert registered(host) == order


def test_every_row_names_its_kind_module_paper_and_defaults():
    assert len({t.name for t in TECHNIQUES}) == len(TECHNIQUES)
    for t in TECHNIQUES:
        assert t.kind in KINDS, t
        assert t.module is None or (REPO / "invertedit" / t.module).is_file(), t.module
        assert t.defaults and t.cost and t.summary, t.name
    assert {t.module.split("/")[0] for t in TECHNIQUES if t.module and t.kind != "testing"} == \
        {"inversion", "attention", "guidance"}


def test_the_workflow_builders_are_the_tables_workflows():
    shown = {w for t in TECHNIQUES for w in t.workflows}
    assert shown <= set(make_workflows.WORKFLOWS), shown - set(make_workflows.WORKFLOWS)
    assert set(make_workflows.WORKFLOWS) <= shown, set(make_workflows.WORKFLOWS) - shown
    assert by_node()["InvertEditAttentionInject"].workflows[0] == "invert_and_edit"


def test_every_benchmark_row_exists_in_its_benchmark():
    for t in TECHNIQUES:
        if t.benchmark is None:
            continue
        module, row = t.benchmark
        source = (REPO / "workshop" / "benchmarks" / f"{module}.py").read_text(encoding="utf-8")
        assert row in source, f"{t.name}: no row starting {row!r} in workshop/benchmarks/{module}.py"
