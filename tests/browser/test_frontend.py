"""Every shipped workflow loaded in the real frontend, on the real server.

One ComfyUI server (``python main.py --cpu``, this pack in its ``custom_nodes/``) and one
headless Chromium page on its editor serve the whole module (``conftest.py``). For every
``example_workflows/*.json`` the page runs ``app.loadGraphData(workflow)`` and the test checks:

- every node type is registered in the frontend (no "missing nodes": none before loading, none
  reported to extensions after, no dialog), and no console or page error came with the load;
- no widget value was reset: each widget the file's ``widgets_values`` names (by the file's order,
  named with the node's definition) holds the file's value after loading, no widget is missing or
  unknown, and the node would be saved with the same ``widgets_values``; inside subgraphs too, and
  a subgraph node shows its own widgets' values and its promoted widgets' inner values;
- no two nodes overlap on the canvas, with the sizes the frontend gives them after loading (it
  grows a node to fit its title, sockets and widgets) and the title bar above each;
- what an artist sees on opening it (issue 79): at the saved view, in a 1920 x 1080 window, every
  node and group inside the window, at a scale of at least ``SMALLEST_VIEW``; the nodes in
  coloured groups; a note of at most ``NOTE_WORDS`` words; one Save Image. A screenshot of each
  is saved in ``$INVERTEDIT_SCREENSHOTS/invertedit-templates/`` (the system's temporary folder
  by default), to look at;
- ``app.graphToPrompt().output`` (what the editor queues) equals what the pack's converter gives,
  ``workshop.headless.runner.prepare_prompt(workflow)`` (class_type and inputs per node id);
  and the definitions that converter uses (``runner.node_info``) are the server's ``/object_info``.

Then ``Toy - DDIM inversion and edit.json`` is queued from the page (``app.queuePrompt``) with its steps
lowered through the loaded graph's widgets, and the server runs it to the end: /history reports
success and every Save Image file exists in the server's output folder, carrying the workflow.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "example_workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.json"))
QUEUED_WORKFLOW = WORKFLOWS / "Toy - DDIM inversion and edit.json"
QUEUED_STEPS = 5          # every "steps" widget of the queued workflow (inversion and samplers agree)
RUN_TIMEOUT_S = 600
# Widgets the frontend adds beside the definition's inputs (not values of the node's inputs).
FRONTEND_WIDGETS = {"control_after_generate", "control_filter_list", "upload", "$$canvas-image-preview"}

LOAD = """async (workflow) => {
  const app = window.app;
  const defined = new Set(((workflow.definitions || {}).subgraphs || []).map(s => s.id));  // registered by loading
  const unregistered = workflow.nodes.map(n => n.type).filter(t => !(t in LiteGraph.registered_node_types) && !defined.has(t));
  window.__invertedit.missing = [];
  await app.loadGraphData(workflow);
  await new Promise(resolve => setTimeout(resolve, 300));  // image previews, deferred resizes
  const nodes = app.graph.nodes.map(n => ({
    id: n.id, type: n.type, title: n.title,
    pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]], collapsed: !!(n.flags && n.flags.collapsed),
    widgets: (n.widgets || []).map(w => ({name: w.name, type: w.type, value: w.value})),
    saved: n.serialize().widgets_values || [],
  }));
  const subgraphs = Array.from(app.graph.subgraphs ? app.graph.subgraphs.values() : []).map(sg => ({
    id: sg.id, name: sg.name, registered: sg.id in LiteGraph.registered_node_types,
    nodes: sg.nodes.map(n => ({
      id: n.id, type: n.type, title: n.title,
      pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]], collapsed: !!(n.flags && n.flags.collapsed),
      widgets: (n.widgets || []).map(w => ({name: w.name, type: w.type, value: w.value})),
      saved: n.serialize().widgets_values || [],
    }))}));
  const prompt = await app.graphToPrompt();
  const dialogs = Array.from(document.querySelectorAll(".p-dialog"))
    .filter(d => d.offsetParent !== null).map(d => d.innerText.slice(0, 500));
  const groups = (app.graph.groups || app.graph._groups || []).map(g => ({
    title: g.title, bounding: Array.from(g._bounding || g.bounding).slice(0, 4), color: g.color}));
  const ds = app.canvas.ds;
  const rect = app.canvas.canvas.getBoundingClientRect();
  return {unregistered, subgraphs, missing: window.__invertedit.missing, nodes, output: prompt.output, dialogs,
          title_height: LiteGraph.NODE_TITLE_HEIGHT, groups,
          view: {scale: ds.scale, offset: [ds.offset[0], ds.offset[1]], width: rect.width, height: rect.height}};
}"""


@pytest.fixture(scope="module")
def runner(host):
    from workshop.headless import runner

    return runner


def _json(value):
    return json.loads(json.dumps(value))


def _same(a, b) -> bool:
    """Equal as JSON values, numbers to float precision (the page holds numbers as doubles)."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _short(value, limit=80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _label(node) -> str:
    title = node.get("title")
    return f"node {node['id']} ({node['type']}" + (f" {title!r})" if title and title != node["type"] else ")")


# ----------------------------------------------------------------------------------- the checks

def _missing_node_problems(loaded) -> list[str]:
    problems = [f"node type {t!r} is not registered in the frontend" for t in sorted(set(loaded["unregistered"]))]
    problems += [f"the frontend reports missing node type {t!r}" for t in sorted(set(loaded["missing"]))]
    problems += [f"a dialog opened on loading: {text!r}" for text in loaded["dialogs"]]
    problems += [f"subgraph {s['name']!r} ({s['id']}) is not registered after loading" for s in loaded.get("subgraphs") or []
                 if not s["registered"]]
    return problems


def _widget_problems(workflow, loaded, host, runner) -> list[str]:
    from workshop.headless.canvas import widget_slots
    from workshop.headless.subgraphs import subgraph_definitions

    problems = []
    subgraphs = subgraph_definitions(workflow)
    for inside in loaded.get("subgraphs") or []:   # the nodes inside each subgraph, as the top level's
        if inside["id"] in subgraphs:
            definition = subgraphs[inside["id"]]
            found = _widget_problems({"nodes": definition["nodes"], "definitions": workflow.get("definitions")},
                                     {"nodes": inside["nodes"]}, host, runner)
            problems += [f"inside subgraph {definition.get('name')!r}: {p}" for p in found]
    file_nodes = {str(n["id"]): n for n in workflow["nodes"]}
    for node in loaded["nodes"]:
        source = file_nodes.get(str(node["id"]))
        if source is None:
            problems.append(f"{_label(node)} is not in the file")
            continue
        values = source.get("widgets_values") or []
        widgets = {w["name"]: w for w in node["widgets"]}
        where = _label(source)
        if node["type"] in host.nodes.NODE_CLASS_MAPPINGS:
            slots = widget_slots(runner.node_info(node["type"], host))
            if len(values) != len(slots):
                problems.append(f"{where}: the file has {len(values)} widget values, the definition {len(slots)}")
            for (kind, name), value in zip(slots, values):
                if kind != "value":
                    continue  # control_after_generate, its filter, the upload button: the frontend's own
                if name not in widgets:
                    problems.append(f"{where}: widget {name!r} is missing after loading (file: {_short(value)})")
                elif not _same(widgets[name]["value"], value):
                    problems.append(f"{where}: widget {name!r} is {_short(widgets[name]['value'])} after loading, "
                                    f"the file has {_short(value)}")
            known = {name for _, name in slots} | FRONTEND_WIDGETS
            for name, widget in widgets.items():
                if name not in known:
                    problems.append(f"{where}: unexpected widget {name!r} ({widget['type']}) holding "
                                    f"{_short(widget['value'])}")
        elif node["type"] in subgraphs:
            problems += _subgraph_node_problems(source, node, subgraphs[node["type"]], host, runner)
        else:  # frontend-only nodes (notes): their widgets in order
            shown = [w["value"] for w in node["widgets"]]
            if not _same(shown, values):
                problems.append(f"{where}: widgets hold {_short(shown)} after loading, the file has {_short(values)}")
        if not _same(node["saved"], values):
            problems.append(f"{where}: the editor would save widgets_values {_short(node['saved'], 160)}, "
                            f"the file has {_short(values, 160)}")
    return problems


def _subgraph_node_problems(source, node, definition, host, runner) -> list[str]:
    """A subgraph node shows its own widgets (``["-1", name]`` in ``properties.proxyWidgets``: the file's
    values) and its promoted ones (the inner widget's value, kept in the definition), in that list's order."""
    from workshop.headless.canvas import widget_slots
    from workshop.headless.subgraphs import _proxy_widgets

    values = source.get("widgets_values") or []
    inner = {str(n["id"]): n for n in definition["nodes"]}
    expected = []
    for i, (node_id, name) in enumerate(_proxy_widgets(source)):
        if node_id == "-1":
            expected.append(values[i] if i < len(values) else None)
            continue
        held = inner.get(node_id)
        if held is None or held["type"] not in host.nodes.NODE_CLASS_MAPPINGS:
            return [f"{_label(source)}: promoted widget {name!r} of node {node_id}, which is not in the subgraph"]
        slots = widget_slots(runner.node_info(held["type"], host))
        expected.append(next((v for (kind, n), v in zip(slots, held.get("widgets_values") or []) if kind == "value"
                              and n == name), None))
    shown = [w["value"] for w in node["widgets"]]
    if not _same(shown, expected):
        return [f"{_label(source)}: widgets hold {_short(shown)} after loading, the file's (own and promoted) "
                f"{_short(expected)}"]
    return []


def _overlap_problems(loaded) -> list[str]:
    """Pairs of nodes whose boxes (title bar included) overlap, with the overlap's size; inside subgraphs too."""
    title = loaded["title_height"]
    inner = [f"inside subgraph {s['name']!r}: {p}" for s in loaded.get("subgraphs") or []
             for p in _overlap_problems({"nodes": s["nodes"], "title_height": title})]
    boxes = []
    for node in loaded["nodes"]:
        x, y = node["pos"]
        w, h = node["size"]
        boxes.append((node, x, y - title, x + w, y + (0 if node["collapsed"] else h)))
    problems = inner
    for i, (a, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for b, bx0, by0, bx1, by1 in boxes[i + 1:]:
            dx, dy = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
            if dx > 0 and dy > 0:
                problems.append(f"{_label(a)} at {a['pos']} size {[round(v, 1) for v in a['size']]} and {_label(b)} "
                                f"at {b['pos']} size {[round(v, 1) for v in b['size']]} overlap by "
                                f"{dx:.0f} x {dy:.0f} px")
    return problems


from workshop.workflow_style import NOTE_WORDS   # a template's note at most (issue 79: a few lines, the details behind a link)
SMALLEST_VIEW = 0.4      # the saved view's scale at least (the frontend draws text from about 0.57 at 1x pixels)
SCREENSHOTS = Path(os.environ.get("INVERTEDIT_SCREENSHOTS", tempfile.gettempdir())) / "invertedit-templates"


def _view_problems(workflow, loaded) -> list[str]:
    """What an artist opening the template would not see: a node or group outside the window at the
    saved view, no groups, a node outside every group, a long note, other than one Save Image."""
    view, title = loaded["view"], loaded["title_height"]
    scale, (ox, oy) = view["scale"], view["offset"]

    def on_screen(x0, y0, x1, y1) -> bool:
        return (x0 + ox) * scale >= 0 and (y0 + oy) * scale >= 0 and (x1 + ox) * scale <= view["width"] \
            and (y1 + oy) * scale <= view["height"]

    problems = []
    if scale < SMALLEST_VIEW:
        problems.append(f"the saved view's scale is {scale:.2f}, below {SMALLEST_VIEW}")
    boxes = {}
    for node in loaded["nodes"]:
        x, y = node["pos"]
        w, h = node["size"]
        boxes[node["id"]] = (x, y - title, x + w, y + (0 if node["collapsed"] else h))
        if not on_screen(*boxes[node["id"]]):
            problems.append(f"{_label(node)} is outside the window at the saved view")
    groups = loaded["groups"]
    if len(groups) < 2:
        problems.append(f"{len(groups)} group(s): expected one per stage (load, ..., result)")
    for g in groups:
        x, y, w, h = g["bounding"]
        if not on_screen(x, y, x + w, y + h):
            problems.append(f"group {g['title']!r} is outside the window at the saved view")
    for node in loaded["nodes"]:
        if node["type"] in ("MarkdownNote", "Note"):
            text = str(node["widgets"][0]["value"] if node["widgets"] else "")
            words = len(re.sub(r"\]\([^)]*\)", "]", text).split())   # a link's words, not its address
            if words > NOTE_WORDS:
                problems.append(f"{_label(node)} holds {words} words (at most {NOTE_WORDS})")
            continue
        x0, y0, x1, y1 = boxes[node["id"]]
        if not any(g["bounding"][0] <= x0 and g["bounding"][1] <= y0 and x1 <= g["bounding"][0] + g["bounding"][2]
                   and y1 <= g["bounding"][1] + g["bounding"][3] for g in groups):
            problems.append(f"{_label(node)} is in no group")
    savers = [n for n in loaded["nodes"] if n["type"] == "SaveImage"]
    if len(savers) != 1:
        problems.append(f"{len(savers)} Save Image nodes: the result is saved by one (the rest previewed)")
    return problems


def _prompt_problems(workflow, loaded, host, runner) -> list[str]:
    try:
        ours = _json(runner.prepare_prompt(workflow, host=host))
    except runner.WorkflowError as e:
        return [f"our converter refuses the workflow: {e}"]
    theirs = _json(loaded["output"])
    problems = []
    for key in sorted(set(ours) | set(theirs), key=lambda k: (len(k), k)):
        if key not in theirs:
            problems.append(f"node {key} ({ours[key]['class_type']}): in our prompt, not in the frontend's")
            continue
        if key not in ours:
            problems.append(f"node {key} ({theirs[key]['class_type']}): in the frontend's prompt, not in ours")
            continue
        a, b = ours[key], theirs[key]
        if a["class_type"] != b["class_type"]:
            problems.append(f"node {key}: class_type {a['class_type']!r} (ours) vs {b['class_type']!r} (frontend)")
        for name in sorted(set(a["inputs"]) | set(b["inputs"])):
            if name not in b["inputs"]:
                problems.append(f"node {key} ({a['class_type']}): input {name!r} = {_short(a['inputs'][name])} "
                                "only in our prompt")
            elif name not in a["inputs"]:
                problems.append(f"node {key} ({b['class_type']}): input {name!r} = {_short(b['inputs'][name])} "
                                "only in the frontend's prompt")
            elif not _same(a["inputs"][name], b["inputs"][name]):
                problems.append(f"node {key} ({a['class_type']}): input {name!r} is {_short(a['inputs'][name])} "
                                f"(ours) vs {_short(b['inputs'][name])} (frontend)")
    return problems


def _load(editor, workflow):
    editor.messages.clear()
    loaded = editor.page.evaluate(LOAD, workflow)
    if loaded["dialogs"]:
        editor.close_dialogs()
    return loaded, list(editor.messages)


# ------------------------------------------------------------------------------------ the tests

def _shape(info):
    """A node definition without what depends on the installation: the pack's folder name
    (python_module) and the options of combos (files in the input and model folders)."""
    def combo(spec):
        if not spec or not (isinstance(spec[0], list) or spec[0] == "COMBO"):
            return spec
        options = {k: v for k, v in (spec[1] if len(spec) > 1 else {}).items() if k != "options"}
        return ["COMBO", options]

    info = {k: v for k, v in info.items() if k != "python_module"}
    info["input"] = {group: {name: combo(spec) for name, spec in inputs.items()}
                     for group, inputs in (info.get("input") or {}).items()}
    return info


def test_the_server_serves_the_pack(comfy_server, editor, host, runner):
    """GET /object_info lists every node of the pack, and the node definitions our converter
    uses (runner.node_info) are the server's own for every node type a workflow uses."""
    served = comfy_server.get("/object_info")
    ours = sorted(k for k in host.nodes.NODE_CLASS_MAPPINGS if k.startswith("InvertEdit"))
    assert ours and [k for k in ours if k not in served] == []
    used = sorted({n["type"] for p in WORKFLOW_FILES for n in json.loads(p.read_text(encoding="utf-8"))["nodes"]
                   if n["type"] in host.nodes.NODE_CLASS_MAPPINGS})
    differ = [k for k in used if k not in served or _shape(_json(runner.node_info(k, host))) != _shape(served[k])]
    assert differ == [], f"runner.node_info differs from the server's /object_info for {differ}"
    print(f"\nthe server lists {len(served)} node types, the pack's {len(ours)} among them; frontend start-up: "
          f"{len(editor.startup_messages)} console/HTTP errors (not the workflows'), workarounds: "
          f"{editor.workarounds or 'none'}")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_workflow_loads_in_the_frontend(path, editor, host, runner):
    workflow = json.loads(path.read_text(encoding="utf-8"))
    loaded, messages = _load(editor, workflow)
    found = {
        "missing nodes": _missing_node_problems(loaded),
        "errors while loading": [f"{kind}: {text[:300]}" for kind, text in messages],
        "widget values": _widget_problems(workflow, loaded, host, runner),
        "overlapping nodes": _overlap_problems(loaded),
        "graphToPrompt vs prepare_prompt": _prompt_problems(workflow, loaded, host, runner),
        "what the artist sees": _view_problems(workflow, loaded),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    editor.page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"))
    print(f"{path.name}: saved view at scale {loaded['view']['scale']:.2f}, {len(loaded['groups'])} groups; "
          f"screenshot {SCREENSHOTS / (path.stem + '.png')}")
    assert len(loaded["nodes"]) == len(workflow["nodes"])
    report = "\n".join(f"{check}:\n  " + "\n  ".join(problems) for check, problems in found.items() if problems)
    assert not report, f"{path.name} in the frontend:\n{report}"


QWEN_TEMPLATES = {"Qwen-Image - FlowEdit": "Flux - FlowEdit", "Qwen-Image - Prompt-to-Prompt edit": "Flux - Prompt-to-Prompt edit",
                  "Qwen-Image - KV-Edit": "Flux - KV-Edit"}


@pytest.mark.parametrize("name", list(QWEN_TEMPLATES))
def test_a_qwen_image_template_reads_as_its_flux_one(name, editor):
    """A Qwen-Image template (issue 80) in the frontend: the same stages (groups, in order) as the same technique's
    Flux template, one Save Image, and its three loaders showing ComfyUI's Qwen-Image files (Load Diffusion Model's
    fp8 file, Load CLIP's Qwen2.5-VL of type qwen_image, Load VAE's), no Load Checkpoint."""
    loaded = {}
    for key in (name, QWEN_TEMPLATES[name]):
        workflow = json.loads((WORKFLOWS / f"{key}.json").read_text(encoding="utf-8"))
        loaded[key], messages = _load(editor, workflow)
        assert not messages and not loaded[key]["missing"], (key, messages, loaded[key]["missing"])
    qwen, flux = loaded[name], loaded[QWEN_TEMPLATES[name]]
    assert [g["title"] for g in qwen["groups"]] == [g["title"] for g in flux["groups"]]
    assert [n["type"] for n in qwen["nodes"]].count("SaveImage") == 1
    shown = {n["type"]: {w["name"]: w["value"] for w in n["widgets"]} for n in qwen["nodes"]}
    assert "CheckpointLoaderSimple" not in shown
    assert shown["UNETLoader"]["unet_name"] == "qwen_image_fp8_e4m3fn.safetensors"
    assert (shown["CLIPLoader"]["clip_name"], shown["CLIPLoader"]["type"]) == ("qwen_2.5_vl_7b_fp8_scaled.safetensors",
                                                                             "qwen_image")
    assert shown["VAELoader"]["vae_name"] == "qwen_image_vae.safetensors"
    assert shown["ModelSamplingAuraFlow"]["shift"] == pytest.approx(3.1)
    print(f"{name}: groups {[g['title'] for g in qwen['groups']]}, view scale {qwen['view']['scale']:.2f} "
          f"(its Flux template's {flux['view']['scale']:.2f})")


LOCK_TEMPLATES = sorted(p.stem for p in WORKFLOW_FILES if " - Instruction lock" in p.stem)


@pytest.mark.parametrize("name", LOCK_TEMPLATES)
def test_an_instruction_lock_template_shows_the_editors_files(name, editor):
    """An instruction lock template (issue 81) in the frontend: one Save Image, no Load Checkpoint and nothing that
    rescales the picture, and the loaders showing the editor's files as ComfyUI's own template loads them (Kontext:
    Load Diffusion Model's flux1-dev-kontext fp8, DualCLIPLoader's clip_l and t5xxl of type flux, Load VAE's ae;
    Qwen-Image-Edit: its fp8 file, Load CLIP's Qwen2.5-VL of type qwen_image, Load VAE's); every Flow Invert keeping
    keys and values and every KV-Edit with cache_reference shown (off)."""
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    loaded, messages = _load(editor, workflow)
    assert not messages and not loaded["missing"], (messages, loaded["missing"])
    types = [n["type"] for n in loaded["nodes"]]
    assert types.count("SaveImage") == 1 and "CheckpointLoaderSimple" not in types
    assert not {"ImageScale", "ImageScaleToTotalPixels", "FluxKontextImageScale"} & set(types)
    shown = {n["type"]: {w["name"]: w["value"] for w in n["widgets"]} for n in loaded["nodes"]}
    if name.startswith("Kontext - "):
        assert shown["UNETLoader"]["unet_name"] == "flux1-dev-kontext_fp8_scaled.safetensors"
        clip = shown["DualCLIPLoader"]
        assert (clip["clip_name1"], clip["clip_name2"], clip["type"]) == (
            "clip_l.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors", "flux")
        assert shown["VAELoader"]["vae_name"] == "ae.safetensors"
    else:
        assert shown["UNETLoader"]["unet_name"] == "qwen_image_edit_fp8_e4m3fn.safetensors"
        assert (shown["CLIPLoader"]["clip_name"], shown["CLIPLoader"]["type"]) == (
            "qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image")
        assert shown["VAELoader"]["vae_name"] == "qwen_image_vae.safetensors"
    widgets = [{w["name"]: w["value"] for w in n["widgets"]} for n in loaded["nodes"]]
    kinds = [n["type"] for n in loaded["nodes"]]
    assert all(w["keep_keys_values"] is True for w, t in zip(widgets, kinds) if t == "InvertEditFlowInvert")
    assert all(w["cache_reference"] is False for w, t in zip(widgets, kinds) if t == "InvertEditKVEdit")
    print(f"{name}: {len(types)} nodes, groups {[g['title'] for g in loaded['groups']]}, view scale "
          f"{loaded['view']['scale']:.2f}")


def _queue_from_the_page(comfy_server, editor, workflow: dict, widgets: dict[str, object]) -> tuple[dict, list, float]:
    """Load ``workflow`` in the editor, set every widget named in ``widgets`` (name: value) on the loaded graph, queue
    it with the editor's own Queue (app.queuePrompt) and wait for the run: (the prompt the page posted, the files its
    Save Image nodes wrote, the seconds). Asserts the run succeeded and each file holds the prompt and workflow."""
    from PIL import Image

    loaded, messages = _load(editor, workflow)
    assert not messages and not loaded["missing"], (messages, loaded["missing"])
    page = editor.page
    changed = page.evaluate("""(values) => {
      const changed = {};
      for (const node of window.app.graph.nodes)
        for (const widget of node.widgets || [])
          if (widget.name in values) { widget.value = values[widget.name]; changed[widget.name] = (changed[widget.name] || 0) + 1; }
      return changed;
    }""", widgets)
    assert set(changed) == set(widgets), f"widgets not found on the loaded graph: {set(widgets) - set(changed)}"
    with page.expect_response(lambda r: r.url.endswith("/api/prompt") and r.request.method == "POST",
                              timeout=60_000) as posted:
        page.evaluate("() => window.app.queuePrompt(0, 1)")
    response = posted.value
    answer = response.json()
    assert response.ok and answer.get("prompt_id") and not answer.get("node_errors"), answer
    prompt = response.request.post_data_json["prompt"]
    prompt_id = answer["prompt_id"]

    started, entry = time.monotonic(), None
    while time.monotonic() - started < RUN_TIMEOUT_S:
        entry = comfy_server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") or \
                entry and entry.get("status", {}).get("status_str") == "error":
            break
        time.sleep(2)
    elapsed = time.monotonic() - started
    assert entry is not None, f"prompt {prompt_id} not in /history after {RUN_TIMEOUT_S}s"
    status = entry["status"]
    assert status.get("status_str") == "success" and status.get("completed"), \
        f"the run failed: {json.dumps(status.get('messages'))[:3000]}"

    savers = sorted(k for k, v in prompt.items() if v["class_type"] == "SaveImage")
    assert savers
    files = []
    for key in savers:
        images = entry["outputs"].get(key, {}).get("images") or []
        assert images, f"Save Image node {key} reported no image"
        for image in images:
            assert image["type"] == "output"
            file = comfy_server.output_dir / image["subfolder"] / image["filename"]
            assert file.is_file(), f"{file} does not exist"
            with Image.open(file) as im:
                assert json.loads(im.info["prompt"]) and json.loads(im.info["workflow"])["nodes"]
            files.append(file)
    return prompt, files, elapsed


def test_queue_a_workflow_from_the_page(comfy_server, editor):
    """Toy - DDIM inversion and edit.json queued with the editor's own Queue (app.queuePrompt), its steps
    lowered in the loaded graph's widgets, runs on the server: /history says success and every
    Save Image file is in the output folder, with the prompt and the workflow in it."""
    workflow = json.loads(QUEUED_WORKFLOW.read_text(encoding="utf-8"))
    prompt, files, elapsed = _queue_from_the_page(comfy_server, editor, workflow, {"steps": QUEUED_STEPS})
    assert {v["inputs"]["steps"] for v in prompt.values() if "steps" in v["inputs"]} == {QUEUED_STEPS}
    print(f"\n{QUEUED_WORKFLOW.name} queued from the page ({QUEUED_STEPS} steps) ran in {elapsed:.1f}s: "
          f"{', '.join(str(f.relative_to(comfy_server.output_dir)) for f in files)}")


def test_queue_a_checkpoint_template_from_the_page(comfy_server, editor, host):
    """A template built on Load Checkpoint ("SD1.5 - DDIM inversion and edit") queued from the canvas runs and saves
    its pictures (issue 78: the host's pinned frontend, 1.27.10, dropped Load Checkpoint's class type where the host
    lacks a stock loader node, spandrel's Upscale Model Loader here, and the server refused every such template).
    The checkpoint: the smallest SD1.5 the host's detection reads as one (320 channels, one level; real-sized CLIP
    and VAE, random weights: 0.44 GB) written into the server's checkpoints folder (a temporary folder), chosen in
    Load Checkpoint's widget; the steps at 3 and the image at 64 px, as a user would lower them."""
    from dataclasses import replace

    from workshop.benchmarks.gpu_cost import family_specs, write_checkpoint

    folder = comfy_server.base / "models" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    spec = family_specs(host.pack.demo.tiny_models, True)["sd15"]
    unet = dict(spec.unet_config, channel_mult=[1], num_res_blocks=[1], transformer_depth=[1, 1],
                transformer_depth_middle=1, transformer_depth_output=[1, 1])
    ckpt, _ = write_checkpoint(host, "sd15", replace(spec, unet_config=unet), folder)
    workflow = json.loads((WORKFLOWS / "SD1.5 - DDIM inversion and edit.json").read_text(encoding="utf-8"))
    try:
        prompt, files, elapsed = _queue_from_the_page(comfy_server, editor, workflow, {
            "ckpt_name": ckpt.name, "steps": 3, "megapixels": 0.01})   # about 100 x 100 px
    finally:
        ckpt.unlink()
    loaders = [v for v in prompt.values() if v["class_type"] == "CheckpointLoaderSimple"]
    assert len(loaders) == 1 and loaders[0]["inputs"]["ckpt_name"] == ckpt.name, prompt
    print(f"\n'SD1.5 - DDIM inversion and edit' queued from the page on a Load Checkpoint checkpoint ran in "
          f"{elapsed:.1f}s: {len(files)} pictures")
