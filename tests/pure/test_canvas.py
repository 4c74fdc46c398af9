"""Canvas workflow <-> API format conversion (workshop/headless/canvas.py), without the host.

The node definitions below are hand-written in the shape of ComfyUI's /object_info entries
(V1 nodes with option lists, V3 nodes with ["COMBO", {"options": ...}]).
"""
from __future__ import annotations

import copy
import json

import pytest

from pathlib import Path

from workshop.headless.canvas import CanvasError, build_canvas, canvas_problems, canvas_to_api, widget_slots

SAMPLERS = ["euler", "ddim", "dpmpp_2m"]
SCHEDULERS = ["normal", "karras", "ddim_uniform"]


def _info(required=None, optional=None, output=(), output_name=None, order=None, output_node=False, display=None):
    required = required or {}
    optional = optional or {}
    info = {
        "input": {"required": required, **({"optional": optional} if optional else {})},
        "input_order": order or {"required": list(required), **({"optional": list(optional)} if optional else {})},
        "output": list(output),
        "output_is_list": [False] * len(output),
        "output_name": list(output_name or output),
        "output_node": output_node,
    }
    if display:
        info["display_name"] = display
    return info


NODE_INFO = {
    "CheckpointLoaderSimple": _info({"ckpt_name": [["a.safetensors", "b.safetensors"], {}]},
                                    output=("MODEL", "CLIP", "VAE")),
    "CLIPTextEncode": _info({"text": ["STRING", {"multiline": True, "dynamicPrompts": True}], "clip": ["CLIP"]},
                            output=("CONDITIONING",)),
    "EmptyLatentImage": _info({"width": ["INT", {"default": 512}], "height": ["INT", {"default": 512}],
                               "batch_size": ["INT", {"default": 1}]}, output=("LATENT",)),
    "KSampler": _info({
        "model": ["MODEL"], "seed": ["INT", {"default": 0, "control_after_generate": True}],
        "steps": ["INT", {"default": 20}], "cfg": ["FLOAT", {"default": 8.0}],
        "sampler_name": [SAMPLERS], "scheduler": [SCHEDULERS],
        "positive": ["CONDITIONING"], "negative": ["CONDITIONING"], "latent_image": ["LATENT"],
        "denoise": ["FLOAT", {"default": 1.0}],
    }, output=("LATENT",)),
    "VAEDecode": _info({"samples": ["LATENT"], "vae": ["VAE"]}, output=("IMAGE",)),
    "VAEEncode": _info({"pixels": ["IMAGE"], "vae": ["VAE"]}, output=("LATENT",)),
    "SaveImage": _info({"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
                       output_node=True),
    "LoadImage": _info({"image": [["sample.png", "other.png"], {"image_upload": True}]}, output=("IMAGE", "MASK")),
    "LoraLoader": _info({"model": ["MODEL"], "clip": ["CLIP"], "lora_name": [["l.safetensors"]],
                         "strength_model": ["FLOAT", {"default": 1.0}], "strength_clip": ["FLOAT", {"default": 1.0}]},
                        output=("MODEL", "CLIP")),
    # V3 style: COMBO with options, control_after_generate on a non-seed name
    "PrimitiveInt": _info({"value": ["INT", {"min": 0, "control_after_generate": True}]}, output=("INT",)),
    "RandomNoise": _info({"noise_seed": ["INT", {"default": 0, "control_after_generate": True}]}, output=("NOISE",)),
    "LatentCut": _info({"samples": ["LATENT", {}], "dim": ["COMBO", {"multiselect": False, "options": ["x", "y", "t"]}],
                        "index": ["INT", {"default": 0}]}, output=("LATENT",)),
    # a seed-named INT that opts out of the control widget
    "NoControlSeed": _info({"seed": ["INT", {"default": 3, "control_after_generate": False}],
                            "x": ["FLOAT", {"default": 0.5}]}, output=("INT",)),
    # a combo with control_after_generate: control value + filter string
    "ComboControl": _info({"choice": [["p", "q", "r"], {"control_after_generate": True}],
                           "n": ["INT", {"default": 1}]}, output=("STRING",)),
    # forceInput STRING: a socket, not a widget; an optional widget and a list-valued widget
    "Joiner": _info({"a": ["STRING", {"forceInput": True}], "sep": ["STRING", {"default": ","}]},
                    optional={"b": ["STRING", {"forceInput": True}], "upper": ["BOOLEAN", {"default": False}]},
                    output=("STRING",)),
    # an upload combo followed by an optional widget: the upload value comes last
    "LoadImageOpt": _info({"image": ["COMBO", {"options": ["sample.png"], "image_upload": True}]},
                          optional={"scale": ["FLOAT", {"default": 1.0}]}, output=("IMAGE",)),
}


def _node(nid, kind, inputs=(), outputs=(), widgets=None, mode=0, **extra):
    node = {"id": nid, "type": kind, "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": mode,
            "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs], "properties": {}}
    if widgets is not None:
        node["widgets_values"] = widgets
    node.update(extra)
    return node


def _in(name, kind, link=None, widget=False):
    d = {"name": name, "type": kind, "link": link}
    if widget:
        d["widget"] = {"name": name}
    return d


def _out(name, kind, links=()):
    return {"name": name, "type": kind, "links": list(links)}


def txt2img_workflow():
    """The classic default workflow, as the frontend saves it (list links, seed control value)."""
    nodes = [
        _node(4, "CheckpointLoaderSimple", outputs=[_out("MODEL", "MODEL", [1]), _out("CLIP", "CLIP", [3, 5]),
                                                    _out("VAE", "VAE", [8])], widgets=["b.safetensors"]),
        _node(6, "CLIPTextEncode", [_in("clip", "CLIP", 3)], [_out("CONDITIONING", "CONDITIONING", [4])],
              widgets=["a red circle"]),
        _node(7, "CLIPTextEncode", [_in("clip", "CLIP", 5)], [_out("CONDITIONING", "CONDITIONING", [6])],
              widgets=["blurry"]),
        _node(5, "EmptyLatentImage", outputs=[_out("LATENT", "LATENT", [2])], widgets=[64, 96, 1]),
        _node(3, "KSampler", [_in("model", "MODEL", 1), _in("positive", "CONDITIONING", 4),
                              _in("negative", "CONDITIONING", 6), _in("latent_image", "LATENT", 2)],
              [_out("LATENT", "LATENT", [7])], widgets=[156680208700286, "randomize", 20, 7.5, "euler", "normal", 1]),
        _node(8, "VAEDecode", [_in("samples", "LATENT", 7), _in("vae", "VAE", 8)], [_out("IMAGE", "IMAGE", [9])]),
        _node(9, "SaveImage", [_in("images", "IMAGE", 9)], widgets=["ComfyUI"]),
        _node(10, "MarkdownNote", widgets=["# notes are skipped"]),
    ]
    links = [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"], [4, 6, 0, 3, 1, "CONDITIONING"],
             [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"], [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"],
             [9, 8, 0, 9, 0, "IMAGE"]]
    return {"last_node_id": 10, "last_link_id": 9, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4}


TXT2IMG_API = {
    "4": {"ckpt_name": "b.safetensors"},
    "6": {"text": "a red circle", "clip": ["4", 1]},
    "7": {"text": "blurry", "clip": ["4", 1]},
    "5": {"width": 64, "height": 96, "batch_size": 1},
    "3": {"seed": 156680208700286, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
          "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]},
    "8": {"samples": ["3", 0], "vae": ["4", 2]},
    "9": {"filename_prefix": "ComfyUI", "images": ["8", 0]},
}


def _inputs(prompt):
    return {k: v["inputs"] for k, v in prompt.items()}


def test_list_links_and_widgets_with_seed_control():
    prompt = canvas_to_api(txt2img_workflow(), NODE_INFO)
    assert _inputs(prompt) == TXT2IMG_API
    assert {k: v["class_type"] for k, v in prompt.items()} == {
        "4": "CheckpointLoaderSimple", "6": "CLIPTextEncode", "7": "CLIPTextEncode", "5": "EmptyLatentImage",
        "3": "KSampler", "8": "VAEDecode", "9": "SaveImage"}  # the MarkdownNote is skipped
    json.dumps(prompt)


def test_dict_links_and_callable_node_info():
    wf = txt2img_workflow()
    wf["links"] = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link))
                   for link in wf["links"]]
    wf["version"] = 1
    assert _inputs(canvas_to_api(wf, NODE_INFO.get)) == TXT2IMG_API


def test_dict_widgets_values_and_defaults():
    wf = txt2img_workflow()
    ks = next(n for n in wf["nodes"] if n["id"] == 3)
    ks["widgets_values"] = {"seed": 5, "steps": 9, "cfg": 2.0, "sampler_name": "ddim", "scheduler": "karras"}
    empty = next(n for n in wf["nodes"] if n["id"] == 5)
    del empty["widgets_values"]
    got = _inputs(canvas_to_api(wf, NODE_INFO))
    assert {k: got["3"][k] for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")} == {
        "seed": 5, "steps": 9, "cfg": 2.0, "sampler_name": "ddim", "scheduler": "karras", "denoise": 1.0}
    assert got["5"] == {"width": 512, "height": 512, "batch_size": 1}


def test_widget_order_follows_input_order():
    info = _info({"b": ["INT", {}], "a": ["STRING", {}]}, output=("INT",), order={"required": ["a", "b"]})
    wf = {"nodes": [_node(1, "X", widgets=["text", 7])], "links": []}
    assert _inputs(canvas_to_api(wf, {"X": info})) == {"1": {"a": "text", "b": 7}}


def test_widget_slots_extras():
    assert widget_slots(NODE_INFO["KSampler"])[:3] == [("value", "seed"), ("control", "seed"), ("value", "steps")]
    assert widget_slots(NODE_INFO["RandomNoise"]) == [("value", "noise_seed"), ("control", "noise_seed")]
    assert widget_slots(NODE_INFO["PrimitiveInt"]) == [("value", "value"), ("control", "value")]
    assert widget_slots(NODE_INFO["NoControlSeed"]) == [("value", "seed"), ("value", "x")]
    assert widget_slots(NODE_INFO["ComboControl"]) == [("value", "choice"), ("control", "choice"),
                                                       ("filter", "choice"), ("value", "n")]
    assert widget_slots(NODE_INFO["LoadImage"]) == [("value", "image"), ("upload", "upload")]
    assert widget_slots(NODE_INFO["LoadImageOpt"]) == [("value", "image"), ("value", "scale"), ("upload", "upload")]
    assert widget_slots(NODE_INFO["Joiner"]) == [("value", "sep"), ("value", "upper")]
    assert widget_slots(NODE_INFO["LatentCut"]) == [("value", "dim"), ("value", "index")]


def test_control_values_upload_and_v3_combos():
    wf = {"nodes": [
        _node(1, "RandomNoise", outputs=[_out("NOISE", "NOISE")], widgets=[42, "fixed"]),
        _node(2, "NoControlSeed", outputs=[_out("INT", "INT")], widgets=[11, 0.25]),
        _node(3, "ComboControl", outputs=[_out("STRING", "STRING")], widgets=["q", "increment", "/p|q/", 4]),
        _node(4, "LoadImage", outputs=[_out("IMAGE", "IMAGE"), _out("MASK", "MASK")], widgets=["other.png", "image"]),
        _node(5, "LoadImageOpt", outputs=[_out("IMAGE", "IMAGE")], widgets=["sample.png", 0.5, "image"]),
        _node(6, "LatentCut", [_in("samples", "LATENT", 1)], [_out("LATENT", "LATENT")], widgets=["y", 2]),
        _node(7, "EmptyLatentImage", outputs=[_out("LATENT", "LATENT", [1])], widgets=[8, 8, 1]),
    ], "links": [[1, 7, 0, 6, 0, "LATENT"]]}
    assert _inputs(canvas_to_api(wf, NODE_INFO)) == {
        "1": {"noise_seed": 42}, "2": {"seed": 11, "x": 0.25}, "3": {"choice": "q", "n": 4},
        "4": {"image": "other.png"}, "5": {"image": "sample.png", "scale": 0.5},
        "6": {"dim": "y", "index": 2, "samples": ["7", 0]}, "7": {"width": 8, "height": 8, "batch_size": 1}}


def test_values_saved_without_control_value_still_map():
    wf = txt2img_workflow()
    ks = next(n for n in wf["nodes"] if n["id"] == 3)
    ks["widgets_values"] = [7, 20, 7.5, "euler", "normal", 1]  # an old save without "randomize"
    assert _inputs(canvas_to_api(wf, NODE_INFO))["3"]["steps"] == 20
    assert _inputs(canvas_to_api(wf, NODE_INFO))["3"]["seed"] == 7


def test_force_input_optional_and_list_values():
    wf = {"nodes": [
        _node(1, "ComboControl", outputs=[_out("STRING", "STRING", [1])], widgets=["p", "fixed", "", 1]),
        _node(2, "Joiner", [_in("a", "STRING", 1), _in("b", "STRING", None)], [_out("STRING", "STRING")],
              widgets=[["x", "y"], True]),
    ], "links": [[1, 1, 0, 2, 0, "STRING"]]}
    got = _inputs(canvas_to_api(wf, NODE_INFO))
    assert got["2"] == {"sep": {"__value__": ["x", "y"]}, "upper": True, "a": ["1", 0]}


def test_widget_converted_to_socket_from_node_and_from_primitive():
    wf = txt2img_workflow()
    ks = next(n for n in wf["nodes"] if n["id"] == 3)
    ks["inputs"] += [_in("steps", "INT", 20, widget=True), _in("seed", "INT", 21, widget=True),
                     _in("cfg", "FLOAT", None, widget=True)]  # a widget socket without a link keeps its value
    wf["nodes"] += [
        _node(20, "PrimitiveInt", outputs=[_out("INT", "INT", [20])], widgets=[33, "fixed"]),
        _node(21, "PrimitiveNode", outputs=[{"name": "INT", "type": "INT", "links": [21], "widget": {"name": "seed"}}],
              widgets=[1234, "fixed"]),
    ]
    wf["links"] += [[20, 20, 0, 3, 4, "INT"], [21, 21, 0, 3, 5, "INT"]]
    prompt = canvas_to_api(wf, NODE_INFO)
    assert prompt["3"]["inputs"]["steps"] == ["20", 0]
    assert prompt["3"]["inputs"]["seed"] == 1234
    assert prompt["3"]["inputs"]["cfg"] == 7.5
    assert prompt["20"]["inputs"] == {"value": 33}
    assert "21" not in prompt  # the PrimitiveNode is virtual


def test_reroutes_are_followed():
    wf = txt2img_workflow()
    # CLIP -> Reroute 30 -> Reroute 31 -> CLIPTextEncode 6
    wf["nodes"] += [
        _node(30, "Reroute", [_in("", "*", 3)], [_out("", "CLIP", [30])]),
        _node(31, "Reroute", [_in("", "*", 30)], [_out("", "CLIP", [31])]),
    ]
    wf["links"] = [lk for lk in wf["links"] if lk[0] != 3] + [[3, 4, 1, 30, 0, "CLIP"], [30, 30, 0, 31, 0, "CLIP"],
                                                            [31, 31, 0, 6, 0, "CLIP"]]
    next(n for n in wf["nodes"] if n["id"] == 6)["inputs"][0]["link"] = 31
    prompt = canvas_to_api(wf, NODE_INFO)
    assert prompt["6"]["inputs"]["clip"] == ["4", 1]
    assert "30" not in prompt and "31" not in prompt


def lora_workflow(mode):
    """Checkpoint -> LoraLoader (MODEL, CLIP) -> KSampler / CLIPTextEncode; the lora in `mode`."""
    wf = txt2img_workflow()
    wf["nodes"].append(_node(40, "LoraLoader", [_in("model", "MODEL", 40), _in("clip", "CLIP", 41)],
                             [_out("MODEL", "MODEL", [1]), _out("CLIP", "CLIP", [3])],
                             widgets=["l.safetensors", 0.8, 0.5], mode=mode))
    wf["links"] = [lk for lk in wf["links"] if lk[0] not in (1, 3)] + [
        [40, 4, 0, 40, 0, "MODEL"], [41, 4, 1, 40, 1, "CLIP"], [1, 40, 0, 3, 0, "MODEL"], [3, 40, 1, 6, 0, "CLIP"]]
    return wf


def test_active_lora():
    prompt = canvas_to_api(lora_workflow(0), NODE_INFO)
    assert prompt["40"]["inputs"] == {"lora_name": "l.safetensors", "strength_model": 0.8, "strength_clip": 0.5,
                                      "model": ["4", 0], "clip": ["4", 1]}
    assert prompt["3"]["inputs"]["model"] == ["40", 0] and prompt["6"]["inputs"]["clip"] == ["40", 1]


def test_bypassed_node_passes_matching_input_through():
    prompt = canvas_to_api(lora_workflow(4), NODE_INFO)
    assert "40" not in prompt
    assert prompt["3"]["inputs"]["model"] == ["4", 0]
    assert prompt["6"]["inputs"]["clip"] == ["4", 1]
    assert _inputs(prompt) == TXT2IMG_API


def test_bypass_matches_by_type_not_slot():
    # VAEEncode(pixels IMAGE, vae VAE) -> LATENT bypassed: nothing of type LATENT to pass, so the
    # consumer's input is dropped and reported; a node whose slot-0 input has another type finds
    # the input of the right type elsewhere.
    info = dict(NODE_INFO, Swap=_info({"clip": ["CLIP"], "model": ["MODEL"]}, output=("MODEL",)))
    wf = txt2img_workflow()
    wf["nodes"].append(_node(50, "Swap", [_in("clip", "CLIP", 50), _in("model", "MODEL", 51)],
                             [_out("MODEL", "MODEL", [1])], mode=4))
    wf["links"] = [lk for lk in wf["links"] if lk[0] != 1] + [[50, 4, 1, 50, 0, "CLIP"], [51, 4, 0, 50, 1, "MODEL"],
                                                            [1, 50, 0, 3, 0, "MODEL"]]
    assert canvas_to_api(wf, info)["3"]["inputs"]["model"] == ["4", 0]


def test_bypassed_without_matching_input_is_a_clear_error():
    wf = txt2img_workflow()
    wf["nodes"].append(_node(60, "EmptyLatentImage", outputs=[_out("LATENT", "LATENT", [2])], widgets=[8, 8, 1], mode=4))
    wf["links"] = [lk for lk in wf["links"] if lk[0] != 2] + [[2, 60, 0, 3, 3, "LATENT"]]
    wf["nodes"] = [n for n in wf["nodes"] if n["id"] != 5]
    with pytest.raises(CanvasError, match=r"node 3 \(KSampler\): required input 'latent_image' is missing"):
        canvas_to_api(wf, NODE_INFO)


def test_muted_nodes_are_left_out():
    wf = txt2img_workflow()
    # a muted branch (decode + save) is simply absent
    wf["nodes"].append(_node(70, "SaveImage", [_in("images", "IMAGE", 70)], widgets=["muted"], mode=2))
    wf["links"].append([70, 8, 0, 70, 0, "IMAGE"])
    next(n for n in wf["nodes"] if n["id"] == 8)["outputs"][0]["links"].append(70)
    prompt = canvas_to_api(wf, NODE_INFO)
    assert "70" not in prompt and _inputs(prompt) == TXT2IMG_API


def test_muted_source_of_required_input_is_named():
    wf = txt2img_workflow()
    next(n for n in wf["nodes"] if n["id"] == 3)["mode"] = 2
    with pytest.raises(CanvasError) as err:
        canvas_to_api(wf, NODE_INFO)
    msg = str(err.value)
    assert "node 8 (VAEDecode)" in msg and "'samples'" in msg and "node 3 (KSampler)" in msg and "muted" in msg


def test_unknown_node_type():
    wf = txt2img_workflow()
    wf["nodes"].append(_node(80, "FancyUpscaler", widgets=[]))
    with pytest.raises(CanvasError, match=r"node 80 \(FancyUpscaler\): unknown node type 'FancyUpscaler'"):
        canvas_to_api(wf, NODE_INFO)


def test_missing_required_input():
    wf = txt2img_workflow()
    next(n for n in wf["nodes"] if n["id"] == 8)["inputs"][1]["link"] = None
    with pytest.raises(CanvasError, match=r"node 8 \(VAEDecode\): required input 'vae' is missing: nothing is "
                                          r"connected to it \(expects VAE\)"):
        canvas_to_api(wf, NODE_INFO)


def test_broken_link_and_not_a_canvas():
    wf = txt2img_workflow()
    next(n for n in wf["nodes"] if n["id"] == 8)["inputs"][1]["link"] = 99
    with pytest.raises(CanvasError, match=r"node 8 \(VAEDecode\): input 'vae' refers to link 99"):
        canvas_to_api(wf, NODE_INFO)
    with pytest.raises(CanvasError, match="not a canvas workflow"):
        canvas_to_api({"3": {"class_type": "KSampler", "inputs": {}}}, NODE_INFO)


def test_subgraphs_are_expanded_and_group_nodes_refused_clearly():
    """Subgraphs: tests/pure/test_subgraphs.py; an empty one adds nothing. The legacy group nodes are refused."""
    wf = txt2img_workflow()
    sub = "9a8b7c6d-0000-4000-8000-000000000000"
    wf["definitions"] = {"subgraphs": [{"id": sub, "nodes": [], "links": []}]}
    wf["nodes"].append(_node(90, sub, widgets=[]))
    assert _inputs(canvas_to_api(wf, NODE_INFO)) == TXT2IMG_API
    wf["extra"]["groupNodes"] = {"Sampling": {"nodes": []}}
    wf["nodes"].append(_node(91, "workflow>Sampling", widgets=[]))
    with pytest.raises(CanvasError, match=r"node 91 \(workflow>Sampling\): group nodes are not supported"):
        canvas_to_api(wf, NODE_INFO)


# ---------------------------------------------------------------- build_canvas

SPEC = {
    "nodes": [
        {"key": "ckpt", "type": "CheckpointLoaderSimple", "widgets": {"ckpt_name": "a.safetensors"}},
        {"key": "pos", "type": "CLIPTextEncode", "widgets": {"text": "a red circle"}, "inputs": {"clip": ("ckpt", "CLIP")}},
        {"key": "neg", "type": "CLIPTextEncode", "inputs": {"clip": ("ckpt", 1)}, "title": "Negative"},
        {"key": "latent", "type": "EmptyLatentImage", "widgets": {"width": 64, "height": 64}},
        {"key": "steps", "type": "PrimitiveInt", "widgets": {"value": 12}},
        {"key": "sampler", "type": "KSampler",
         "widgets": {"seed": 7, "cfg": 1.0, "sampler_name": "ddim", "scheduler": "ddim_uniform"},
         "inputs": {"model": ("ckpt", "MODEL"), "positive": ("pos", 0), "negative": ("neg", "CONDITIONING"),
                    "latent_image": ("latent", "LATENT"), "steps": ("steps", "INT")}},
        {"key": "decode", "type": "VAEDecode", "inputs": {"samples": ("sampler", 0), "vae": ("ckpt", "VAE")}},
        {"key": "save", "type": "SaveImage", "widgets": {"filename_prefix": "t/out"}, "inputs": {"images": ("decode", 0)}},
        {"key": "load", "type": "LoadImage", "widgets": {"image": "sample.png"}},
        {"key": "note", "type": "MarkdownNote", "text": "# Read me"},
    ],
    "groups": [{"title": "Sample", "nodes": ["sampler", "decode"]}],
}


def test_build_canvas_round_trip():
    wf = build_canvas(SPEC, NODE_INFO)
    json.dumps(wf)
    assert canvas_problems(wf) == []
    for key in ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version"):
        assert key in wf
    assert wf["version"] == 0.4 and wf["last_node_id"] == 10 and wf["last_link_id"] == len(wf["links"]) == 10
    ids = {n["type"] + ("/" + n.get("title", "") if n.get("title") else ""): n["id"] for n in wf["nodes"]}
    assert [n["id"] for n in wf["nodes"]] == list(range(1, 11))

    prompt = canvas_to_api(wf, NODE_INFO)
    assert _inputs(prompt) == {
        "1": {"ckpt_name": "a.safetensors"},
        "2": {"text": "a red circle", "clip": ["1", 1]},
        "3": {"text": "", "clip": ["1", 1]},
        "4": {"width": 64, "height": 64, "batch_size": 1},
        "5": {"value": 12},
        "6": {"seed": 7, "steps": ["5", 0], "cfg": 1.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
              "denoise": 1.0, "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]},
        "7": {"samples": ["6", 0], "vae": ["1", 2]},
        "8": {"filename_prefix": "t/out", "images": ["7", 0]},
        "9": {"image": "sample.png"},
    }
    assert prompt["3"]["_meta"]["title"] == "Negative" and ids["CLIPTextEncode/Negative"] == 3

    nodes = {n["id"]: n for n in wf["nodes"]}
    # the frontend's extras: control value after the seed (fixed: reproducible), the upload value
    assert nodes[6]["widgets_values"] == [7, "fixed", 20, 1.0, "ddim", "ddim_uniform", 1.0]
    assert nodes[9]["widgets_values"] == ["sample.png", "image"]
    assert nodes[10]["widgets_values"] == ["# Read me"] and nodes[10]["properties"] == {}
    assert nodes[6]["properties"] == {"Node name for S&R": "KSampler"}
    # links agree with both ends
    for link_id, src, src_slot, dst, dst_slot, kind in wf["links"]:
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert nodes[src]["outputs"][src_slot]["type"] == kind
    # the converted widget socket
    assert {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 7} in nodes[6]["inputs"]
    # left to right: every link goes to a column further right; execution order is topological
    for _, src, _, dst, _, _ in wf["links"]:
        assert nodes[src]["pos"][0] + nodes[src]["size"][0] < nodes[dst]["pos"][0]
        assert nodes[src]["order"] < nodes[dst]["order"]
    assert sorted(n["order"] for n in wf["nodes"]) == list(range(10))
    # nodes in a column do not overlap
    by_x: dict = {}
    for n in wf["nodes"]:
        by_x.setdefault(n["pos"][0], []).append(n)
    for col in by_x.values():
        col.sort(key=lambda n: n["pos"][1])
        for a, b in zip(col, col[1:]):
            assert a["pos"][1] + a["size"][1] < b["pos"][1]
    (group,) = wf["groups"]
    x, y, w, h = group["bounding"]
    for nid in (6, 7):
        px, py = nodes[nid]["pos"]
        assert x <= px and y <= py and px + nodes[nid]["size"][0] <= x + w and py + nodes[nid]["size"][1] <= y + h


def test_build_canvas_is_deterministic_and_does_not_mutate_spec():
    spec = copy.deepcopy(SPEC)
    a = json.dumps(build_canvas(spec, NODE_INFO), sort_keys=True)
    assert spec == SPEC
    assert a == json.dumps(build_canvas(spec, NODE_INFO), sort_keys=True)


def test_build_canvas_mode_and_dict_nodes():
    spec = {"nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple"},
        "lora": {"type": "LoraLoader", "inputs": {"model": ("ckpt", "MODEL"), "clip": ("ckpt", "CLIP")}, "mode": 4},
        "enc": {"type": "CLIPTextEncode", "inputs": {"clip": ("lora", "CLIP")}},
        "ks": {"type": "KSampler", "inputs": {"model": ("lora", 0), "positive": ("enc", 0), "negative": ("enc", 0),
                                              "latent_image": ("lat", 0)}},
        "lat": {"type": "EmptyLatentImage"},
    }}
    prompt = canvas_to_api(build_canvas(spec, NODE_INFO), NODE_INFO)
    assert "2" not in prompt
    assert prompt["3"]["inputs"]["clip"] == ["1", 1] and prompt["4"]["inputs"]["model"] == ["1", 0]
    assert prompt["4"]["inputs"]["latent_image"] == ["5", 0] and prompt["1"]["inputs"] == {"ckpt_name": "a.safetensors"}


@pytest.mark.parametrize("node, message", [
    ({"key": "k", "type": "KSampler", "widgets": {"stpes": 3}}, r"no widget 'stpes'"),
    ({"key": "k", "type": "VAEDecode", "inputs": {"samples": ("lat", 0)}}, r"required input 'vae' \(VAE\) is not connected"),
    ({"key": "k", "type": "VAEDecode", "inputs": {"samples": ("ckpt", "VAE"), "vae": ("ckpt", "VAE")}},
     r"input 'samples' expects LATENT but output 'VAE' of 'ckpt' is VAE"),
    ({"key": "k", "type": "VAEDecode", "inputs": {"samples": ("nope", 0), "vae": ("ckpt", 2)}}, r"unknown node key 'nope'"),
    ({"key": "k", "type": "VAEDecode", "inputs": {"samples": ("ckpt", "LATENT"), "vae": ("ckpt", 2)}}, r"has no output 'LATENT'"),
    ({"key": "k", "type": "Nope"}, r"unknown node type 'Nope'"),
])
def test_build_canvas_errors(node, message):
    spec = {"nodes": [{"key": "ckpt", "type": "CheckpointLoaderSimple"}, {"key": "lat", "type": "EmptyLatentImage"}, node]}
    with pytest.raises(CanvasError, match=message):
        build_canvas(spec, NODE_INFO)


def test_canvas_problems_finds_inconsistent_links():
    wf = txt2img_workflow()
    assert canvas_problems(wf) == []
    next(n for n in wf["nodes"] if n["id"] == 8)["inputs"][1]["link"] = 5  # link 5 goes to node 7
    wf["last_link_id"] = 3
    problems = canvas_problems(wf)
    assert "last_link_id 3 is below link id 9" in problems
    assert any("link 8: input 1 of node 8 (VAEDecode) does not hold it" in p for p in problems)


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "example_workflows").glob("*.json")), ids=lambda p: p.stem)
def test_shipped_workflows_are_well_formed_canvas_files(path):
    """Host-agnostic check of example_workflows/*.json (the host tests execute them)."""
    workflow = json.loads(path.read_text(encoding="utf-8"))
    assert canvas_problems(workflow) == []


@pytest.mark.parametrize("path", sorted((REPO / "example_workflows").glob("*.json")), ids=lambda p: p.stem)
def test_template_names_make_card_titles_and_urls(path):
    """The template browser shows the file name as the card's title and fetches
    /api/workflow_templates/<pack>/<name>.json and .jpg: letters, digits, spaces and . _ - + ( )
    only (no '#', '?', '%' or '/' that a URL would cut or misread; tests/host/test_workflows.py
    fetches them from the host's routes)."""
    import re

    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._+()-]*", path.stem), path.stem
    assert path.stem == path.stem.strip() and "  " not in path.stem


@pytest.mark.parametrize("path", sorted((REPO / "example_workflows").glob("*.json")), ids=lambda p: p.stem)
def test_every_template_has_its_card_picture(path):
    """The template browser shows <name>.jpg beside <name>.json as the card's picture
    (written by python -m workshop.make_thumbnails from what the workflow saves)."""
    from PIL import Image

    picture = path.with_suffix(".jpg")
    assert picture.is_file(), f"{picture.name} is missing: run python -m workshop.make_thumbnails {path.stem}"
    with Image.open(picture) as im:
        assert im.format == "JPEG" and im.width >= 128 and im.height >= 128


# ---------------------------------------------------------------- the banded layout (issue 79)

STAGED = {
    "nodes": [dict(n, stage={"ckpt": "load", "pos": "load", "neg": "load", "latent": "load", "steps": "load",
                             "load": "load", "sampler": "edit", "decode": "result", "save": "result"}.get(n["key"]))
              for n in SPEC["nodes"]],
    "stages": [{"key": "load", "title": "Load", "color": "#3f789e"}, {"key": "edit", "title": "Edit"},
               {"key": "result", "title": "Result", "color": "#88A"}],
}
STAGED["nodes"][-2]["collapsed"] = True   # the LoadImage, shown by its title only


def _boxes(wf):
    return {n["id"]: (n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0],
                      n["pos"][1] + (0 if n["flags"].get("collapsed") else n["size"][1])) for n in wf["nodes"]}


def test_stages_lay_the_nodes_out_in_groups_that_do_not_overlap():
    wf = build_canvas(STAGED, NODE_INFO)
    assert [g["title"] for g in wf["groups"]] == ["Load", "Edit", "Result"]
    assert [g["color"] for g in wf["groups"]] == ["#3f789e", "#3f789e", "#88A"]
    boxes = _boxes(wf)
    by_key = {n["key"]: i + 1 for i, n in enumerate(STAGED["nodes"])}
    for group, keys in zip(wf["groups"], (["ckpt", "pos", "neg", "latent", "steps", "load"], ["sampler"],
                                          ["decode", "save"])):
        x, y, w, h = group["bounding"]
        for key in keys:
            x0, y0, x1, y1 = boxes[by_key[key]]
            assert x <= x0 and y <= y0 and x1 <= x + w and y1 <= y + h, (key, group["title"])
    for i, a in boxes.items():             # no two nodes overlap, no two groups overlap
        for j, b in boxes.items():
            if i < j:
                assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (i, j)
    xs = [g["bounding"][0] for g in wf["groups"]]
    assert xs == sorted(xs) and all(a["bounding"][0] + a["bounding"][2] < b["bounding"][0]
                                    for a, b in zip(wf["groups"], wf["groups"][1:]))
    assert wf["nodes"][by_key["load"] - 1]["flags"] == {"collapsed": True}
    # the note stands left of the groups
    note = wf["nodes"][by_key["note"] - 1]
    assert note["pos"][0] + note["size"][0] < xs[0]


def test_the_saved_view_shows_the_whole_graph():
    from workshop.headless.canvas import VIEW_WINDOW

    wf = build_canvas(STAGED, NODE_INFO)
    scale, (ox, oy) = wf["extra"]["ds"]["scale"], wf["extra"]["ds"]["offset"]
    left, top, width, height = VIEW_WINDOW
    corners = list(_boxes(wf).values()) + [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2],
                                           g["bounding"][1] + g["bounding"][3]) for g in wf["groups"]]
    for x0, y0, x1, y1 in corners:
        assert (x0 + ox) * scale >= left - 1e-6 and (y0 + oy) * scale >= top - 1e-6
        assert (x1 + ox) * scale <= left + width + 1e-6 and (y1 + oy) * scale <= top + height + 1e-6
    assert 0 < scale <= 1.0
    # a graph too wide for the window at scale 1 gets a smaller scale, still all in view
    wide = copy.deepcopy(STAGED)
    wide["nodes"] += [{"key": f"more{i}", "type": "EmptyLatentImage", "stage": "edit", "column": 3 + i} for i in range(30)]
    assert build_canvas(wide, NODE_INFO)["extra"]["ds"]["scale"] < scale


def test_stages_refuse_an_unknown_stage_and_groups_beside_them():
    bad = copy.deepcopy(STAGED)
    bad["nodes"][0]["stage"] = "invert"
    with pytest.raises(CanvasError, match="stage 'invert' is not one of"):
        build_canvas(bad, NODE_INFO)
    both = dict(copy.deepcopy(STAGED), groups=[{"title": "x", "nodes": ["ckpt"]}])
    with pytest.raises(CanvasError, match="either 'stages'"):
        build_canvas(both, NODE_INFO)


def test_a_linked_widget_shows_its_linked_value():
    spec = copy.deepcopy(SPEC)
    spec["nodes"].insert(0, {"key": "steps_in", "type": "PrimitiveInt", "widgets": {"value": 9}})
    sampler = next(n for n in spec["nodes"] if n["key"] == "sampler")
    sampler["inputs"]["steps"] = ("steps_in", "INT")
    sampler["linked_values"] = {"steps": 9}
    wf = build_canvas(spec, NODE_INFO)
    node = next(n for n in wf["nodes"] if n["type"] == "KSampler")
    assert node["widgets_values"][2] == 9    # seed, control, steps
    assert canvas_to_api(wf, NODE_INFO)[str(node["id"])]["inputs"]["steps"] == ["1", 0]
