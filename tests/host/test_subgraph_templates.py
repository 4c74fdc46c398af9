"""The one-node templates (issue 79): "SD1.5 - Prompt-to-Prompt edit (one node)", "Flux - FlowEdit (one node)"
and "Flux - KV-Edit (one node)", each its workflow with the inversion, the edit and the decoding in one
subgraph node (``workshop.headless.subgraphs``; ``workshop.make_workflows`` writes them).

tests/host/test_workflows.py executes them as every template (and checks their pictures as those of the
workflows they wrap); here: each runs exactly the workflow it wraps (its API prompt is that workflow's, the
inner nodes' ids aside), what it shows on the canvas, and its promoted widgets against the node definitions.
The converter on the host's own subgraph templates: test_workflows.py's ``test_converter_on_the_hosts_templates``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "example_workflows"
ONE_NODE = {"SD1.5 - Prompt-to-Prompt edit (one node)": "SD1.5 - Prompt-to-Prompt edit",
            "Flux - FlowEdit (one node)": "Flux - FlowEdit",
            "Flux - KV-Edit (one node)": "Flux - KV-Edit"}
# what each one's subgraph node holds (at least), and what stays on the canvas
INSIDE = {"SD1.5 - Prompt-to-Prompt edit (one node)": {"VAEEncode", "InvertEditDDIMInvert", "InvertEditDirectInversion",
                                                       "InvertEditAttentionInject", "InvertEditApplyInversion",
                                                       "KSamplerAdvanced", "VAEDecode"},
          "Flux - FlowEdit (one node)": {"VAEEncode", "ModelSamplingFlux", "InvertEditFlowEdit", "SamplerCustomAdvanced",
                                         "VAEDecode"},
          "Flux - KV-Edit (one node)": {"VAEEncode", "ModelSamplingFlux", "InvertEditFlowInvert", "InvertEditKVEdit",
                                        "SamplerCustomAdvanced", "VAEDecode"}}
OUTSIDE = {"CheckpointLoaderSimple", "LoadImage", "CLIPTextEncode", "SaveImage"}


@pytest.fixture(scope="module")
def runner(host):
    from workshop.headless import runner

    return runner


def _load(name: str) -> dict:
    path = WORKFLOWS / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path.name} is missing: python -m workshop.make_workflows \"{name}\"")
    return json.loads(path.read_text(encoding="utf-8"))


def _without_instance_ids(prompt: dict, instance: int) -> dict:
    prefix = f"{instance}:"

    def plain(value):
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            return [value[0].removeprefix(prefix), value[1]]
        return value

    return {k.removeprefix(prefix): {"class_type": v["class_type"], "inputs": {n: plain(x) for n, x in v["inputs"].items()}}
            for k, v in prompt.items()}


@pytest.mark.parametrize("name", ONE_NODE)
def test_the_one_node_template_runs_the_workflow_it_wraps(name, host, runner):
    """wrap -> flatten: the template's API prompt is its workflow's (the inner nodes' ids "<node>:<id>" aside)."""
    wrapped, plain = _load(name), _load(ONE_NODE[name])
    (instance,) = [n for n in wrapped["nodes"] if n["type"] in {s["id"] for s in wrapped["definitions"]["subgraphs"]}]
    ours = _without_instance_ids(runner.prepare_prompt(wrapped, host=host), instance["id"])
    theirs = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in runner.prepare_prompt(plain, host=host).items()}
    assert ours == theirs, "the one-node template differs from its workflow: run python -m workshop.make_workflows " \
                           f"\"{ONE_NODE[name]}\" \"{name}\""
    assert any(":" in k for k in runner.prepare_prompt(wrapped, host=host))


@pytest.mark.parametrize("name", ONE_NODE)
def test_what_the_one_node_template_shows(name, host, runner):
    """One subgraph node doing the edit among Load Checkpoint, Load Image, the prompts and Save Image; the
    subgraph in the frontend 1.28's format; each promoted widget a widget of its inner node, fed by no link."""
    from workshop.headless.canvas import input_specs
    from workshop.headless.subgraphs import SUBGRAPH_INPUT_ID, SUBGRAPH_OUTPUT_ID

    workflow = _load(name)
    (definition,) = workflow["definitions"]["subgraphs"]
    (instance,) = [n for n in workflow["nodes"] if n["type"] == definition["id"]]
    shown = {n["type"] for n in workflow["nodes"]}
    inner = {n["type"] for n in definition["nodes"]}
    assert OUTSIDE <= shown and INSIDE[name] <= inner and not INSIDE[name] & shown
    assert not shown & {"KSamplerAdvanced", "SamplerCustomAdvanced", "VAEDecode"}
    # the format the editor loads (zSubgraphDefinition): a version-1 graph with its input and output nodes
    assert definition["version"] == 1 and definition["revision"] == 0 and definition["name"]
    assert (definition["inputNode"]["id"], definition["outputNode"]["id"]) == (SUBGRAPH_INPUT_ID, SUBGRAPH_OUTPUT_ID)
    assert all(isinstance(link, dict) for link in definition["links"])
    assert [(i["name"], i["type"]) for i in instance["inputs"]] == [(i["name"], i["type"]) for i in definition["inputs"]]
    assert [(o["name"], o["type"]) for o in instance["outputs"]] == [(o["name"], o["type"]) for o in definition["outputs"]]
    assert all(i["link"] is not None for i in instance["inputs"]), "every input of the subgraph node is fed"
    nodes = {str(n["id"]): n for n in definition["nodes"]}
    lookup = lambda c: runner.node_info(c, host) if c in host.nodes.NODE_CLASS_MAPPINGS else None  # noqa: E731
    proxies = instance["properties"]["proxyWidgets"]
    assert len(proxies) >= 3
    for node_id, widget in proxies:
        if node_id == "-1":   # the subgraph node's own widget: an input linked inside to a widget's input
            assert any(i["name"] == widget and "widget" in i for i in instance["inputs"])
            continue
        node = nodes[node_id]
        specs = {s.name: s for s in input_specs(lookup(node["type"]))}
        assert widget in specs and specs[widget].is_widget, (node["type"], widget)
        assert not any(i["name"] == widget and i.get("link") is not None for i in node.get("inputs") or [])
    assert len(instance["widgets_values"]) == sum(1 for p in proxies if p[0] == "-1")
    assert any(n["type"] == "MarkdownNote" for n in definition["nodes"]), "the subgraph explains itself in a note"
