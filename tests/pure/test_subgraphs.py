"""Subgraphs (workshop/headless/subgraphs.py), without the host: flattening hand-written workflows in
the frontend 1.28's format, the converter on them, and wrap -> flatten giving the unwrapped prompt.

The node definitions are test_canvas.py's hand-written /object_info entries.
"""
from __future__ import annotations

import copy
import json
import re

import pytest
from test_canvas import NODE_INFO, SPEC, _in, _node, _out

from workshop.headless.canvas import CanvasError, build_canvas, canvas_problems, canvas_to_api
from workshop.headless.subgraphs import (SUBGRAPH_INPUT_ID, SUBGRAPH_OUTPUT_ID, apply_subgraph, edit_nodes, flatten,
                                         spec_ids, subgraph_definitions, wrap)

SAMPLE = "5f0e4a52-1111-4000-8000-000000000001"   # KSampler and a nested Decode; passes its latent through
DECODE = "5f0e4a52-2222-4000-8000-000000000002"   # VAEDecode
INVERT = "5f0e4a52-3333-4000-8000-000000000003"   # a node this host lacks: only ever bypassed

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _io(name, kind, link_ids, n):
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "name": name, "type": kind, "linkIds": list(link_ids)}


def _link(lid, origin, oslot, target, tslot, kind):
    return {"id": lid, "origin_id": origin, "origin_slot": oslot, "target_id": target, "target_slot": tslot, "type": kind}


def _definition(sg_id, name, inputs, outputs, nodes, links):
    return {"id": sg_id, "version": 1, "state": {"lastGroupId": 0, "lastNodeId": 40, "lastLinkId": 40, "lastRerouteId": 0},
            "revision": 0, "config": {}, "name": name,
            "inputNode": {"id": SUBGRAPH_INPUT_ID, "bounding": [0, 0, 120, 140]},
            "outputNode": {"id": SUBGRAPH_OUTPUT_ID, "bounding": [900, 0, 120, 80]},
            "inputs": inputs, "outputs": outputs, "widgets": [], "nodes": nodes, "groups": [], "links": links, "extra": {}}


def subgraph_workflow():
    """txt2img with its sampling and decoding in a subgraph (instance 20), the decoding in a nested one
    (instance 30 inside it), the steps a widget of the subgraph node (its input linked inside to
    KSampler's steps), cfg a promoted widget, the latent also passed straight through to a second
    decode, and the image through a bypassed instance (21) of a subgraph of an unknown node."""
    decode = _definition(DECODE, "Decode", [_io("samples", "LATENT", [1], 1), _io("vae", "VAE", [2], 2)],
                         [_io("IMAGE", "IMAGE", [3], 3)],
                         [_node(8, "VAEDecode", [_in("samples", "LATENT", 1), _in("vae", "VAE", 2)],
                                [_out("IMAGE", "IMAGE", [3])])],
                         [_link(1, -10, 0, 8, 0, "LATENT"), _link(2, -10, 1, 8, 1, "VAE"), _link(3, 8, 0, -20, 0, "IMAGE")])
    sample = _definition(
        SAMPLE, "Sample and decode",
        [_io("model", "MODEL", [11], 11), _io("positive", "CONDITIONING", [12], 12),
         _io("negative", "CONDITIONING", [13], 13), _io("latent_image", "LATENT", [14, 18], 14),
         _io("vae", "VAE", [16], 15), _io("steps", "INT", [19], 16)],
        [_io("IMAGE", "IMAGE", [17], 17), _io("LATENT", "LATENT", [18], 18)],
        [_node(3, "KSampler", [_in("model", "MODEL", 11), _in("positive", "CONDITIONING", 12),
                               _in("negative", "CONDITIONING", 13), _in("latent_image", "LATENT", 14),
                               _in("steps", "INT", 19, widget=True)],
               [_out("LATENT", "LATENT", [15])], widgets=[7, "fixed", 20, 7.5, "euler", "normal", 1]),
         _node(30, DECODE, [_in("samples", "LATENT", 15), _in("vae", "VAE", 16)], [_out("IMAGE", "IMAGE", [17])])],
        [_link(11, -10, 0, 3, 0, "MODEL"), _link(12, -10, 1, 3, 1, "CONDITIONING"), _link(13, -10, 2, 3, 2, "CONDITIONING"),
         _link(14, -10, 3, 3, 3, "LATENT"), _link(15, 3, 0, 30, 0, "LATENT"), _link(16, -10, 4, 30, 1, "VAE"),
         _link(17, 30, 0, -20, 0, "IMAGE"), _link(18, -10, 3, -20, 1, "LATENT"), _link(19, -10, 5, 3, 4, "INT")])
    invert = _definition(INVERT, "Invert", [_io("image", "IMAGE", [1], 21)], [_io("IMAGE", "IMAGE", [2], 22)],
                         [_node(2, "ImageInvert", [_in("image", "IMAGE", 1)], [_out("IMAGE", "IMAGE", [2])], mode=4)],
                         [_link(1, -10, 0, 2, 0, "IMAGE"), _link(2, 2, 0, -20, 0, "IMAGE")])
    nodes = [
        _node(4, "CheckpointLoaderSimple", outputs=[_out("MODEL", "MODEL", [1]), _out("CLIP", "CLIP", [3, 5]),
                                                    _out("VAE", "VAE", [8, 12])], widgets=["b.safetensors"]),
        _node(6, "CLIPTextEncode", [_in("clip", "CLIP", 3)], [_out("CONDITIONING", "CONDITIONING", [4])],
              widgets=["a red circle"]),
        _node(7, "CLIPTextEncode", [_in("clip", "CLIP", 5)], [_out("CONDITIONING", "CONDITIONING", [6])],
              widgets=["blurry"]),
        _node(5, "EmptyLatentImage", outputs=[_out("LATENT", "LATENT", [2])], widgets=[64, 96, 1]),
        _node(20, SAMPLE, [_in("model", "MODEL", 1), _in("positive", "CONDITIONING", 4), _in("negative", "CONDITIONING", 6),
                           _in("latent_image", "LATENT", 2), _in("vae", "VAE", 8), _in("steps", "INT", None, widget=True)],
              [_out("IMAGE", "IMAGE", [9]), _out("LATENT", "LATENT", [11])], widgets=[12],
              properties={"proxyWidgets": [["-1", "steps"], ["3", "cfg"]]}),
        _node(21, INVERT, [_in("image", "IMAGE", 9)], [_out("IMAGE", "IMAGE", [10])], mode=4),
        _node(9, "SaveImage", [_in("images", "IMAGE", 10)], widgets=["ComfyUI"]),
        _node(11, "VAEDecode", [_in("samples", "LATENT", 11), _in("vae", "VAE", 12)], [_out("IMAGE", "IMAGE", [13])]),
        _node(12, "SaveImage", [_in("images", "IMAGE", 13)], widgets=["latent"]),
    ]
    links = [[1, 4, 0, 20, 0, "MODEL"], [2, 5, 0, 20, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"], [4, 6, 0, 20, 1, "CONDITIONING"],
             [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 20, 2, "CONDITIONING"], [8, 4, 2, 20, 4, "VAE"], [9, 20, 0, 21, 0, "IMAGE"],
             [10, 21, 0, 9, 0, "IMAGE"], [11, 20, 1, 11, 0, "LATENT"], [12, 4, 2, 11, 1, "VAE"], [13, 11, 0, 12, 0, "IMAGE"]]
    return {"last_node_id": 21, "last_link_id": 13, "nodes": nodes, "links": links, "groups": [],
            "definitions": {"subgraphs": [sample, decode, invert]}, "config": {}, "extra": {}, "version": 0.4}


EXPECTED = {
    "4": ("CheckpointLoaderSimple", {"ckpt_name": "b.safetensors"}),
    "6": ("CLIPTextEncode", {"text": "a red circle", "clip": ["4", 1]}),
    "7": ("CLIPTextEncode", {"text": "blurry", "clip": ["4", 1]}),
    "5": ("EmptyLatentImage", {"width": 64, "height": 96, "batch_size": 1}),
    # inside instance 20: steps from the subgraph node's widget (12, not the inner 20), cfg the inner node's own
    "20:3": ("KSampler", {"seed": 7, "steps": 12, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
                          "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}),
    "20:30:8": ("VAEDecode", {"samples": ["20:3", 0], "vae": ["4", 2]}),
    "9": ("SaveImage", {"filename_prefix": "ComfyUI", "images": ["20:30:8", 0]}),   # through the bypassed instance 21
    "11": ("VAEDecode", {"samples": ["5", 0], "vae": ["4", 2]}),                     # the latent passed straight through
    "12": ("SaveImage", {"filename_prefix": "latent", "images": ["11", 0]}),
}


def _api(prompt):
    return {k: (v["class_type"], v["inputs"]) for k, v in prompt.items()}


def test_nested_subgraphs_flatten_with_the_frontends_ids():
    wf = subgraph_workflow()
    before = copy.deepcopy(wf)
    assert _api(canvas_to_api(wf, NODE_INFO)) == EXPECTED
    assert wf == before   # the workflow is not changed
    flat = flatten(wf)
    assert "definitions" not in flat and canvas_problems(flat) == []
    ids = [n["id"] for n in flat["nodes"]]
    assert {"20:3", "20:30:8", 21} <= set(ids) and 20 not in ids and "20:30" not in ids
    assert set(subgraph_definitions(wf)) == {SAMPLE, DECODE, INVERT}
    json.dumps(flat)


def test_the_subgraph_nodes_widget_and_a_link_into_it():
    wf = subgraph_workflow()
    # the widget value by the position proxyWidgets gives its "-1" entry (frontend's onConfigure)
    instance = next(n for n in wf["nodes"] if n["id"] == 20)
    instance["properties"]["proxyWidgets"] = [["3", "cfg"], ["-1", "steps"]]
    instance["widgets_values"] = [None, 14]
    assert canvas_to_api(wf, NODE_INFO)["20:3"]["inputs"]["steps"] == 14
    # no value on the subgraph node: the inner widget's own
    instance["widgets_values"] = []
    del instance["properties"]["proxyWidgets"]
    assert canvas_to_api(wf, NODE_INFO)["20:3"]["inputs"]["steps"] == 20
    # the input linked: the link wins over the widget
    wf["nodes"].append(_node(40, "PrimitiveInt", outputs=[_out("INT", "INT", [30])], widgets=[33, "fixed"]))
    instance["inputs"][5]["link"] = 30
    wf["links"].append([30, 40, 0, 20, 5, "INT"])
    prompt = canvas_to_api(wf, NODE_INFO)
    assert prompt["20:3"]["inputs"]["steps"] == ["40", 0] and prompt["40"]["inputs"] == {"value": 33}


def test_a_primitive_outside_feeds_the_subgraph_nodes_input():
    wf = subgraph_workflow()
    wf["nodes"].append(_node(41, "PrimitiveNode", outputs=[_out("INT", "INT", [31])], widgets=[9, "fixed"]))
    next(n for n in wf["nodes"] if n["id"] == 20)["inputs"][5]["link"] = 31
    wf["links"].append([31, 41, 0, 20, 5, "INT"])
    prompt = canvas_to_api(wf, NODE_INFO)
    assert prompt["20:3"]["inputs"]["steps"] == 9 and "41" not in prompt


def test_muted_and_bypassed_instances():
    wf = subgraph_workflow()
    # the bypassed instance runs nothing inside: its node would be unknown to the converter
    assert not any(k.startswith("21:") for k in canvas_to_api(wf, NODE_INFO))
    # a muted instance: nothing inside runs, and what needs its output says so
    next(n for n in wf["nodes"] if n["id"] == 20)["mode"] = 2
    with pytest.raises(CanvasError, match=r"node 9 \(SaveImage\): required input 'images' is missing: it is linked "
                                          rf"to node 20 \({SAMPLE}\), which is muted \(mode 2\)"):
        canvas_to_api(wf, NODE_INFO)
    # bypassed: its LATENT input passes through to its LATENT output; its IMAGE output has no IMAGE input
    next(n for n in wf["nodes"] if n["id"] == 20)["mode"] = 4
    with pytest.raises(CanvasError, match="SaveImage"):
        canvas_to_api(wf, NODE_INFO)
    wf["nodes"] = [n for n in wf["nodes"] if n["id"] not in (9, 21)]
    prompt = canvas_to_api(wf, NODE_INFO)
    assert prompt["11"]["inputs"]["samples"] == ["5", 0] and not any(":" in k for k in prompt)


def test_an_unlinked_subgraph_input_leaves_the_input_unset():
    wf = subgraph_workflow()
    next(n for n in wf["nodes"] if n["id"] == 20)["inputs"][4]["link"] = None   # vae
    wf["links"] = [link for link in wf["links"] if link[0] != 8]
    next(n for n in wf["nodes"] if n["id"] == 4)["outputs"][2]["links"] = [12]
    with pytest.raises(CanvasError, match=r"node 20:30:8 \(VAEDecode\): required input 'vae' is missing"):
        canvas_to_api(wf, NODE_INFO)


def test_broken_and_circular_subgraphs_are_clear_errors():
    wf = subgraph_workflow()
    sample = next(s for s in wf["definitions"]["subgraphs"] if s["id"] == SAMPLE)
    sample["links"] = [link for link in sample["links"] if link["id"] != 12]
    with pytest.raises(CanvasError, match="link 12 in subgraph 'Sample and decode' .*is not in the links"):
        canvas_to_api(wf, NODE_INFO)
    wf = subgraph_workflow()
    decode = next(s for s in wf["definitions"]["subgraphs"] if s["id"] == DECODE)
    decode["nodes"].append(_node(9, SAMPLE, [], []))   # Decode holds Sample, which holds Decode
    with pytest.raises(CanvasError, match="contains itself"):
        flatten(wf)


def test_group_nodes_are_still_refused():
    wf = subgraph_workflow()
    wf["extra"]["groupNodes"] = {"MyGroup": {}}
    wf["nodes"].append(_node(50, "workflow>MyGroup", widgets=[]))
    with pytest.raises(CanvasError, match="group nodes are not supported"):
        canvas_to_api(wf, NODE_INFO)


# ---------------------------------------------------------------- wrap


def _normalised(prompt, instance):
    """The prompt with the inner nodes' ids ("<instance>:<id>") as their own."""
    prefix = f"{instance}:"

    def fix(value):
        return [value[0].removeprefix(prefix), value[1]] if isinstance(value, list) and len(value) == 2 \
            and isinstance(value[0], str) else value

    return {k.removeprefix(prefix): (v["class_type"], {n: fix(x) for n, x in v["inputs"].items()}) for k, v in prompt.items()}


def _definition_problems(definition) -> list[str]:
    """The subgraph's links against its nodes, inputs and outputs (each end holds the link)."""
    problems = []
    nodes = {n["id"]: n for n in definition["nodes"]}
    for link in definition["links"]:
        if link["origin_id"] == SUBGRAPH_INPUT_ID:
            if link["id"] not in definition["inputs"][link["origin_slot"]]["linkIds"]:
                problems.append(f"input {link['origin_slot']} does not list link {link['id']}")
        elif link["id"] not in nodes[link["origin_id"]]["outputs"][link["origin_slot"]]["links"]:
            problems.append(f"node {link['origin_id']} does not list link {link['id']}")
        if link["target_id"] == SUBGRAPH_OUTPUT_ID:
            if definition["outputs"][link["target_slot"]]["linkIds"] != [link["id"]]:
                problems.append(f"output {link['target_slot']} is not link {link['id']}")
        elif nodes[link["target_id"]]["inputs"][link["target_slot"]]["link"] != link["id"]:
            problems.append(f"node {link['target_id']} does not hold link {link['id']}")
    return problems


def test_wrap_then_flatten_gives_the_unwrapped_prompt():
    canvas = build_canvas(SPEC, NODE_INFO)
    keys = spec_ids(SPEC, canvas)
    wrapped = wrap(canvas, ["sampler", "decode"], "Sample and decode", "KSampler and VAE Decode.",
                   promote=[("sampler", "cfg"), ("sampler", "seed")], keys=keys, node_info=NODE_INFO)
    assert canvas_problems(wrapped) == []
    (definition,) = wrapped["definitions"]["subgraphs"]
    assert _definition_problems(definition) == []
    instance = next(n for n in wrapped["nodes"] if n["type"] == definition["id"])
    assert instance["id"] == canvas["last_node_id"] + 1 and wrapped["last_node_id"] == instance["id"] + 1   # + the note
    assert _normalised(canvas_to_api(wrapped, NODE_INFO), instance["id"]) == _api(canvas_to_api(canvas, NODE_INFO))
    # what the editor loads: ids, versions, the input and output nodes, names from the sockets
    assert UUID.match(definition["id"]) and all(UUID.match(s["id"]) for s in definition["inputs"] + definition["outputs"])
    assert definition["version"] == 1 and wrapped["version"] == 0.4 and set(definition["state"]) == {
        "lastGroupId", "lastNodeId", "lastLinkId", "lastRerouteId"}
    assert (definition["inputNode"]["id"], definition["outputNode"]["id"]) == (-10, -20)
    assert [(s["name"], s["type"]) for s in definition["inputs"]] == [
        ("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent_image", "LATENT"),
        ("steps", "INT"), ("vae", "VAE")]
    assert [(s["name"], s["type"]) for s in definition["outputs"]] == [("IMAGE", "IMAGE")]
    assert [i["name"] for i in instance["inputs"]] == [s["name"] for s in definition["inputs"]]
    # steps is fed by a link into KSampler's steps widget: a widget of the subgraph node (and linked); cfg and seed promoted
    assert instance["inputs"][4]["widget"] == {"name": "steps"} and instance["widgets_values"] == [20]
    sampler = keys["sampler"]
    assert instance["properties"]["proxyWidgets"] == [["-1", "steps"], [str(sampler), "cfg"], [str(sampler), "seed"]]
    assert any(n["type"] == "MarkdownNote" and n["widgets_values"] == ["KSampler and VAE Decode."] for n in definition["nodes"])
    # the inner nodes keep their ids and links; the same canvas gives the same file
    assert {n["id"] for n in definition["nodes"] if n["type"] != "MarkdownNote"} == {keys["sampler"], keys["decode"]}
    again = wrap(canvas, [keys["sampler"], keys["decode"]], "Sample and decode", "KSampler and VAE Decode.",
                 promote=[(sampler, "cfg"), (sampler, "seed")], node_info=NODE_INFO)
    assert json.dumps(again) == json.dumps(wrapped)


def test_wrap_in_a_wrap_and_the_group_of_the_subgraph_node():
    spec = dict(SPEC, groups=[{"title": "1. Load", "nodes": ["ckpt", "pos", "neg", "latent", "steps", "load"]},
                              {"title": "2. Sample", "nodes": ["sampler"]}, {"title": "3. Result", "nodes": ["decode", "save"]}])
    canvas = build_canvas(spec, NODE_INFO)
    keys = spec_ids(spec, canvas)
    inner = wrap(canvas, [keys["sampler"]], "Sample", keys=keys)
    outer_instance = next(n for n in inner["nodes"] if n["type"] == inner["definitions"]["subgraphs"][0]["id"])
    outer = wrap(inner, [outer_instance["id"], keys["decode"]], "Sample and decode", keys=keys)
    assert len(outer["definitions"]["subgraphs"]) == 2
    prompt = canvas_to_api(outer, NODE_INFO)
    top = next(n for n in outer["nodes"] if n["type"] == outer["definitions"]["subgraphs"][1]["id"])["id"]
    assert f"{top}:{outer_instance['id']}:{keys['sampler']}" in prompt
    # the group the sampler was in went inside; the subgraph node has a group numbered in its place
    titles = sorted(g["title"] for g in outer["groups"])
    assert titles == ["1. Load", "2. Sample and decode", "3. Result"], titles
    save = next(n for n in outer["nodes"] if n["type"] == "SaveImage")
    result = next(g for g in outer["groups"] if g["title"] == "3. Result")
    x, y, w, h = result["bounding"]
    assert x <= save["pos"][0] and save["pos"][0] + save["size"][0] <= x + w   # redrawn around what it keeps


def test_edit_nodes_and_apply_subgraph():
    canvas = build_canvas(SPEC, NODE_INFO)
    keys = spec_ids(SPEC, canvas)
    # the loaders, prompts, saves, the image that nothing uses and the note stay; the rest is the edit
    chosen = edit_nodes(canvas)
    assert set(chosen) == {keys["latent"], keys["steps"], keys["sampler"], keys["decode"]}
    spec = dict(SPEC, subgraph={"name": "Edit", "promote": [("sampler", "cfg")]})
    wrapped = apply_subgraph(spec, canvas, NODE_INFO)
    assert _normalised(canvas_to_api(wrapped, NODE_INFO), wrapped["last_node_id"]) == _api(canvas_to_api(canvas, NODE_INFO))
    assert apply_subgraph(SPEC, canvas) == canvas
    with pytest.raises(CanvasError, match="no node 'nope'"):
        wrap(canvas, ["nope"], "x", keys=keys)
    with pytest.raises(CanvasError, match="not in the subgraph"):
        wrap(canvas, ["sampler"], "x", keys=keys, promote=[("decode", "vae")])
