"""Canvas workflows (what users open and share) <-> the executor's API format.

A canvas workflow is the frontend's LiteGraph JSON: top-level ``nodes``, ``links`` and per-node
``widgets_values``. The executor (``/prompt``) takes the API format ``{id: {"class_type",
"inputs"}}``. The frontend turns one into the other (``graphToPrompt``) using the node
definitions from ``/object_info``; :func:`canvas_to_api` does the same from definitions of the
same shape, so a workflow file is tested exactly as users load it. :func:`build_canvas` goes
the other way: it writes canvas workflows from a short Python description.

Host-agnostic: plain JSON in, plain JSON out; no ComfyUI, no torch.

The rules follow ComfyUI frontend 1.27 (``graphToPrompt``, ``ExecutableNodeDTO``, the widget
constructors):
- Widgets are the inputs of type INT, FLOAT, STRING, BOOLEAN or COMBO (a list of options, or
  ``"COMBO"`` with ``options``), unless marked ``forceInput``; ordered by ``input_order``
  (required, then optional). A list ``widgets_values`` holds one value per widget, plus:
  after an INT with ``control_after_generate`` (or named ``seed``/``noise_seed``) its control
  value ("fixed", "randomize", ...); after a COMBO with ``control_after_generate`` the control
  value and a filter string; at the very end the upload button's value ("image") for nodes
  with an upload combo (``image_upload`` ...). A dict ``widgets_values`` is keyed by name.
- An input linked to a node output becomes ``[origin_id, slot]``; a widget converted to a socket
  takes its value from the link. Links through Reroute nodes and bypassed nodes (mode 4: the
  input of matching type is passed through) are followed to the real origin. A PrimitiveNode
  gives its value to the widgets it feeds. Muted nodes (mode 2), bypassed nodes, Reroute,
  PrimitiveNode, Note and MarkdownNote are not part of the API prompt.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CanvasError",
    "canvas_to_api",
    "build_canvas",
    "canvas_problems",
    "widget_slots",
    "MODE_ALWAYS",
    "MODE_MUTED",
    "MODE_BYPASS",
]

MODE_ALWAYS = 0
MODE_MUTED = 2  # LGraphEventMode.NEVER: the node and what only it feeds are left out
MODE_BYPASS = 4  # the node is skipped; its inputs of matching type feed its consumers

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize", "increment-wrap")
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
#: widgets the frontend adds to a node of its own (not in the node's definition), saved after the node's widgets:
#: node type -> (widget name, the value a new node holds). SaveGLB: the 3D preview's "image" (empty until it draws)
FRONTEND_WIDGETS = {"SaveGLB": ("image", "")}
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode"}) | NOTE_TYPES

NodeInfo = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]


class CanvasError(ValueError):
    """A workflow that cannot be converted or built; the message names the node and the problem."""


# --------------------------------------------------------------------------------------------
# Node definitions (the /object_info shape)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "COMBO" for option lists
    options: Mapping[str, Any]
    optional: bool
    combo_values: tuple | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not (self.options.get("forceInput") or self.options.get("defaultInput"))

    @property
    def has_control(self) -> bool:
        if self.type == "INT":
            ctrl = self.options.get("control_after_generate")
            return bool(ctrl) if ctrl is not None else self.name in ("seed", "noise_seed")
        if self.type == "COMBO":
            return bool(self.options.get("control_after_generate"))
        return False

    @property
    def is_upload(self) -> bool:
        return self.type == "COMBO" and not self.optional and any(self.options.get(k) is True for k in UPLOAD_OPTIONS)

    def default(self):
        """The value a freshly added node shows (the frontend's widget defaults)."""
        if "default" in self.options and self.options["default"] is not None:
            return self.options["default"]
        if self.type == "COMBO":
            return self.combo_values[0] if self.combo_values else None
        return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(self.type)


def _parse_input(name: str, spec: Any, optional: bool) -> InputSpec:
    if not isinstance(spec, (list, tuple)) or not spec:
        spec = [spec]
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", options, optional, tuple(kind))
    kind = str(kind)
    combo = tuple(options.get("options") or ()) if kind == "COMBO" else None
    return InputSpec(name, kind, options, optional, combo)


def input_specs(info: Mapping[str, Any]) -> list[InputSpec]:
    """Inputs in the frontend's order: required by ``input_order``, optional by
    ``input_order``, then any others in definition order (``getOrderedInputSpecs``)."""
    inputs = info.get("input") or {}
    required = inputs.get("required") or {}
    optional = inputs.get("optional") or {}
    order = info.get("input_order") or {}
    names: list[tuple[str, bool]] = []
    for name in order.get("required") or []:
        if name in required:
            names.append((name, False))
    for name in order.get("optional") or []:
        if name in optional:
            names.append((name, True))
    seen = {n for n, _ in names}
    names += [(n, False) for n in required if n not in seen]
    names += [(n, True) for n in optional if n not in seen and n not in required]
    return [_parse_input(n, (optional if opt else required)[n], opt) for n, opt in names]


def widget_slots(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The entries of a list ``widgets_values`` in order, as ``(kind, input name)`` with kind
    ``value``, ``control`` (control_after_generate), ``filter`` (a combo control's filter),
    ``upload`` (the upload button) or ``frontend`` (a widget the frontend adds: ``FRONTEND_WIDGETS``)."""
    slots: list[tuple[str, str]] = []
    uploads: list[tuple[str, str]] = []
    for spec in input_specs(info):
        if not spec.is_widget:
            continue
        slots.append(("value", spec.name))
        if spec.has_control:
            slots.append(("control", spec.name))
            if spec.type == "COMBO":
                slots.append(("filter", spec.name))
        if spec.is_upload and not uploads:
            uploads.append(("upload", "upload"))
    extra = FRONTEND_WIDGETS.get(info.get("name", ""))
    return slots + uploads + ([("frontend", extra[0])] if extra else [])


def _outputs(info: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(name, type, is_list) per output slot."""
    types = list(info.get("output") or [])
    names = list(info.get("output_name") or [])
    is_list = list(info.get("output_is_list") or [])
    out = []
    for i, t in enumerate(types):
        t = "COMBO" if isinstance(t, (list, tuple)) else str(t)
        name = names[i] if i < len(names) and names[i] else t
        out.append((str(name), t, bool(is_list[i]) if i < len(is_list) else False))
    return out


def _lookup(node_info: NodeInfo, class_type: str) -> Mapping[str, Any] | None:
    try:
        if callable(node_info) and not isinstance(node_info, Mapping):
            return node_info(class_type)
        return node_info.get(class_type)
    except KeyError:
        return None


def _type_ok(a: Any, b: Any) -> bool:
    """LiteGraph.isValidConnection: '*' and '' match anything; 'A,B' lists match on overlap."""
    a = "" if a in (None, "*", 0) else str(a)
    b = "" if b in (None, "*", 0) else str(b)
    if not a or not b or a == b:
        return True
    a, b = a.lower(), b.lower()
    if "," not in a and "," not in b:
        return a == b
    return bool(set(a.split(",")) & set(b.split(",")))


# --------------------------------------------------------------------------------------------
# canvas -> API
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Link:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any


@dataclass(frozen=True)
class _Origin:
    node_id: str
    slot: int


@dataclass(frozen=True)
class _Value:
    value: Any


def _parse_links(raw: Any) -> dict[Any, _Link]:
    links: dict[Any, _Link] = {}
    for entry in raw or []:
        if entry is None:
            continue
        if isinstance(entry, Mapping):
            link = _Link(entry.get("id"), entry.get("origin_id"), int(entry.get("origin_slot", 0)),
                         entry.get("target_id"), int(entry.get("target_slot", 0)), entry.get("type"))
        elif isinstance(entry, (list, tuple)) and len(entry) >= 5:
            link = _Link(entry[0], entry[1], int(entry[2]), entry[3], int(entry[4]),
                         entry[5] if len(entry) > 5 else None)
        else:
            raise CanvasError(f"link {entry!r} is neither [id, from, from_slot, to, to_slot, type] nor a dict")
        links[link.id] = link
        links.setdefault(str(link.id), link)
    return links


def _list_widget_values(raw: list[Any], slots: list[tuple[str, str]]) -> dict[str, Any]:
    """The widget values in a list ``widgets_values`` by name (see :func:`widget_slots`)."""
    values: dict[str, Any] = {}
    if len(raw) == len(slots):
        for (kind, name), value in zip(slots, raw):
            if kind in ("value", "frontend"):   # a frontend-added widget is in the prompt the editor submits
                values[name] = value
        return values
    # Saved by another version of the node or frontend (a control value missing, a
    # widget added since): walk the values, taking extras only where they look like one.
    i = 0
    for kind, name in slots:
        if i >= len(raw):
            break
        if kind == "value":
            values[name] = raw[i]
            i += 1
        elif kind == "control":
            if isinstance(raw[i], str) and raw[i] in CONTROL_VALUES:
                i += 1
        elif kind in ("filter", "upload", "frontend"):
            if isinstance(raw[i], str) and (kind == "filter" or i == len(raw) - 1):
                if kind == "frontend":
                    values[name] = raw[i]
                i += 1
    return values


def _api_value(value: Any) -> Any:
    """A widget value as the API format holds it: lists wrapped, so they do not read as links."""
    return {"__value__": value} if isinstance(value, list) else value


def _describe(node: Mapping[str, Any]) -> str:
    title = node.get("title")
    what = f"node {node.get('id')} ({node.get('type')}"
    return what + (f" {title!r})" if title and title != node.get("type") else ")")


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], node_info: NodeInfo):
        if not isinstance(workflow, Mapping) or not isinstance(workflow.get("nodes"), list):
            raise CanvasError("not a canvas workflow: expected a JSON object with a 'nodes' list "
                              "(an API-format prompt would be {id: {class_type, inputs}})")
        self.workflow = workflow
        self.node_info = node_info
        self.nodes: dict[str, Mapping[str, Any]] = {}
        for node in workflow["nodes"]:
            self.nodes[str(node.get("id"))] = node
        self.links = _parse_links(workflow.get("links"))
        subgraphs = (workflow.get("definitions") or {}).get("subgraphs") or []
        self.subgraph_ids = {str(s.get("id")) for s in subgraphs if isinstance(s, Mapping)}
        self.group_node_types = set(((workflow.get("extra") or {}).get("groupNodes") or {}).keys())
        self.infos: dict[str, Mapping[str, Any]] = {}

    # -- node definitions -------------------------------------------------------------------
    def info(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        key = str(node.get("id"))
        if key in self.infos:
            return self.infos[key]
        class_type = node.get("type")
        if (isinstance(class_type, str) and class_type.startswith("workflow>")) or class_type in self.group_node_types:
            raise CanvasError(f"{_describe(node)}: group nodes are not supported here; "
                              "convert them to nodes in the editor (right click > Convert to nodes) and save again")
        info = _lookup(self.node_info, class_type) if class_type else None
        if info is None:
            raise CanvasError(f"{_describe(node)}: unknown node type {class_type!r} "
                              "(is the custom node pack that provides it installed in this ComfyUI?)")
        self.infos[key] = info
        return info

    # -- links ------------------------------------------------------------------------------
    def resolve_input(self, node: Mapping[str, Any], index: int, want: Any, visited: set) -> _Origin | _Value | None:
        inputs = node.get("inputs") or []
        if index >= len(inputs):
            return None
        link_id = inputs[index].get("link")
        if link_id is None:
            return None
        link = self.links.get(link_id, self.links.get(str(link_id)))
        if link is None:
            raise CanvasError(f"{_describe(node)}: input {inputs[index].get('name')!r} refers to link {link_id}, "
                              "which is not in the workflow's links")
        origin = self.nodes.get(str(link.origin_id))
        if origin is None:
            raise CanvasError(f"{_describe(node)}: input {inputs[index].get('name')!r} is linked to node "
                              f"{link.origin_id}, which is not in the workflow")
        return self.resolve_output(origin, link.origin_slot, want if want is not None else inputs[index].get("type"), visited)

    def resolve_output(self, node: Mapping[str, Any], slot: int, want: Any, visited: set) -> _Origin | _Value | None:
        key = (str(node.get("id")), slot)
        if key in visited:
            raise CanvasError(f"{_describe(node)}: circular link through output {slot}")
        visited.add(key)
        kind = node.get("type")
        if node.get("mode") == MODE_BYPASS:
            index = self.bypass_index(node, slot, want)
            return None if index < 0 else self.resolve_input(node, index, want, visited)
        if kind == "PrimitiveNode":
            values = node.get("widgets_values")
            if isinstance(values, Mapping):
                values = list(values.values())
            if not values:
                raise CanvasError(f"{_describe(node)}: the primitive holds no value")
            return _Value(values[0])
        if kind in NOTE_TYPES:
            return None
        if kind == "Reroute" or (kind in VIRTUAL_TYPES):
            return self.resolve_input(node, slot if slot < len(node.get("inputs") or []) else 0, want, visited)
        return _Origin(str(node.get("id")), int(slot))

    def bypass_index(self, node: Mapping[str, Any], slot: int, want: Any) -> int:
        """Which input a bypassed node passes to output ``slot`` (``#getBypassSlotIndex``)."""
        inputs = node.get("inputs") or []
        if not inputs:
            return -1
        if want in ("*", "", None):
            return slot if len(inputs) > slot else 0
        outputs = node.get("outputs") or []
        out_type = outputs[slot].get("type") if slot < len(outputs) else want
        if slot < len(inputs) and _type_ok(inputs[slot].get("type"), out_type) and _type_ok(inputs[slot].get("type"), want):
            return slot
        for i, inp in enumerate(inputs):
            if inp.get("type") == want:
                return i
        for i, inp in enumerate(inputs):
            if _type_ok(inp.get("type"), out_type) and _type_ok(inp.get("type"), want):
                return i
        return -1

    # -- widgets ----------------------------------------------------------------------------
    def widget_values(self, node: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        specs = {s.name: s for s in input_specs(info) if s.is_widget}
        raw = node.get("widgets_values")
        values: dict[str, Any] = {}
        if isinstance(raw, Mapping):
            for name, spec in specs.items():
                values[name] = raw[name] if name in raw else spec.default()
            return values
        values.update(_list_widget_values(list(raw or []), widget_slots(info)))
        for name, spec in specs.items():
            if name not in values:
                values[name] = spec.default()
        return values

    # -- the prompt -------------------------------------------------------------------------
    def convert(self) -> dict[str, dict[str, Any]]:
        prompt: dict[str, dict[str, Any]] = {}
        sources: dict[str, dict[str, tuple]] = {}
        for key, node in self.nodes.items():
            if node.get("type") in VIRTUAL_TYPES or node.get("mode") in (MODE_MUTED, MODE_BYPASS):
                continue
            prompt[key], sources[key] = self.node_prompt(node)
        # Links into muted nodes are dropped (as the frontend does); a required input left
        # without a source is an error here rather than a validation failure later.
        for key, entry in prompt.items():
            self.drop_links_from_outside(prompt, entry, sources[key])
            self.check_required(self.nodes[key], entry, sources[key])
        return prompt

    def node_prompt(self, node: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, tuple]]:
        """The API entry of an executable node, and where its linked inputs come from
        (``{input name: (input index, origin)}``)."""
        kind = node.get("type")
        info = self.info(node)
        inputs: dict[str, Any] = {}
        for name, value in self.widget_values(node, info).items():
            inputs[name] = _api_value(value)
        origins: dict[str, tuple] = {}
        for index, inp in enumerate(node.get("inputs") or []):
            name = inp.get("name")
            if not name:
                continue
            resolved = self.resolve_input(node, index, None, set())
            if isinstance(resolved, _Value):
                inputs[name] = _api_value(resolved.value)
            elif isinstance(resolved, _Origin):
                inputs[name] = [resolved.node_id, resolved.slot]
                origins[name] = (index, resolved)
        title = node.get("title") or info.get("display_name") or kind
        return {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}, origins

    def drop_links_from_outside(self, prompt: Mapping[str, Any], entry: dict[str, Any], origins: dict[str, tuple]) -> None:
        """Remove from ``entry`` the inputs whose origin is not in ``prompt`` (muted or not
        executable), noting why in ``origins`` as ``(None, reason)``."""
        for name, (_, origin) in origins.items():
            if origin.node_id not in prompt:
                del entry["inputs"][name]
                src = self.nodes.get(origin.node_id)
                why = "muted (mode 2)" if src is not None and src.get("mode") == MODE_MUTED else "not executable"
                origins[name] = (None, f"it is linked to {_describe(src or {'id': origin.node_id})}, which is {why}")

    def check_required(self, node: Mapping[str, Any], entry: Mapping[str, Any], origins: Mapping[str, tuple]) -> None:
        """Raise :class:`CanvasError` for the first required input ``entry`` lacks, saying why."""
        for spec in input_specs(self.info(node)):
            if spec.optional or spec.name in entry["inputs"]:
                continue
            reason = origins.get(spec.name)
            if isinstance(reason, tuple) and reason[0] is None:
                detail = reason[1]
            elif spec.is_widget:
                detail = "it has no value"
            else:
                detail = f"nothing is connected to it (expects {spec.type})"
            raise CanvasError(f"{_describe(node)}: required input {spec.name!r} is missing: {detail}")


def canvas_to_api(workflow: Mapping[str, Any], node_info: NodeInfo) -> dict[str, dict[str, Any]]:
    """Convert a canvas workflow to the executor's API format.

    ``node_info`` maps a class type to its ``/object_info`` entry (a dict, or a function that
    returns the entry or None). Raises :class:`CanvasError` naming the node and the problem.
    Subgraphs (``definitions.subgraphs``) are expanded first, as the frontend expands them
    (:func:`headless.subgraphs.flatten`: inner nodes get ids like "12:5")."""
    if isinstance(workflow, Mapping) and (workflow.get("definitions") or {}).get("subgraphs"):
        from .subgraphs import flatten

        workflow = flatten(workflow)
    return _Converter(workflow, node_info).convert()


def canvas_problems(workflow: Mapping[str, Any]) -> list[str]:
    """Structural problems of a canvas workflow, without node definitions: missing top-level
    keys, duplicate ids, ids above last_node_id / last_link_id, links whose two ends disagree
    with the nodes' ``inputs[].link`` and ``outputs[].links``. Empty if none."""
    problems: list[str] = []
    for key in ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version"):
        if key not in workflow:
            problems.append(f"top-level key {key!r} is missing")
    nodes: dict[str, Mapping[str, Any]] = {}
    for node in workflow.get("nodes") or []:
        nid = str(node.get("id"))
        if nid in nodes:
            problems.append(f"node id {nid} is used twice")
        nodes[nid] = node
        for key in ("id", "type", "pos", "size", "flags", "order", "mode", "properties"):
            if key not in node:
                problems.append(f"{_describe(node)}: key {key!r} is missing")
    links = _parse_links(workflow.get("links"))
    ids = {link.id for link in links.values()}
    problems += _last_id_problems(workflow, nodes, ids)
    problems += _link_end_problems(nodes, links)
    problems += _dangling_link_problems(nodes, ids)
    return problems


def _last_id_problems(workflow: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]], ids: set) -> list[str]:
    """last_node_id or last_link_id below an id in use."""
    problems: list[str] = []
    if nodes and isinstance(workflow.get("last_node_id"), int):
        numeric = [int(n) for n in nodes if n.lstrip("-").isdigit()]
        if numeric and max(numeric) > workflow["last_node_id"]:
            problems.append(f"last_node_id {workflow['last_node_id']} is below node id {max(numeric)}")
    if ids and isinstance(workflow.get("last_link_id"), int):
        numeric = [i for i in ids if isinstance(i, int)]
        if numeric and max(numeric) > workflow["last_link_id"]:
            problems.append(f"last_link_id {workflow['last_link_id']} is below link id {max(numeric)}")
    return problems


def _link_end_problems(nodes: Mapping[str, Mapping[str, Any]], links: Mapping[Any, _Link]) -> list[str]:
    """Links whose nodes do not exist, or whose origin output does not list them or whose
    target input does not hold them."""
    problems: list[str] = []
    for link in {link.id: link for link in links.values()}.values():
        src, dst = nodes.get(str(link.origin_id)), nodes.get(str(link.target_id))
        if src is None or dst is None:
            problems.append(f"link {link.id}: node {link.origin_id if src is None else link.target_id} does not exist")
            continue
        outs, ins = src.get("outputs") or [], dst.get("inputs") or []
        if link.origin_slot >= len(outs) or link.id not in (outs[link.origin_slot].get("links") or []):
            problems.append(f"link {link.id}: output {link.origin_slot} of {_describe(src)} does not list it")
        if link.target_slot >= len(ins) or ins[link.target_slot].get("link") != link.id:
            problems.append(f"link {link.id}: input {link.target_slot} of {_describe(dst)} does not hold it")
    return problems


def _dangling_link_problems(nodes: Mapping[str, Mapping[str, Any]], ids: set) -> list[str]:
    """Inputs that hold, and outputs that list, a link id that does not exist."""
    problems: list[str] = []
    for node in nodes.values():
        for inp in node.get("inputs") or []:
            if inp.get("link") is not None and inp["link"] not in ids:
                problems.append(f"{_describe(node)}: input {inp.get('name')!r} holds link {inp['link']}, which does not exist")
        for out in node.get("outputs") or []:
            for link_id in out.get("links") or []:
                if link_id not in ids:
                    problems.append(f"{_describe(node)}: output {out.get('name')!r} lists link {link_id}, which does not exist")
    return problems


# --------------------------------------------------------------------------------------------
# building canvas workflows
# --------------------------------------------------------------------------------------------

COLUMN_GAP = 80
ROW_GAP = 40
ORIGIN = (50.0, 50.0)
SLOT_HEIGHT = 20
WIDGET_HEIGHT = 24
PREVIEW_HEIGHT = 260
MULTILINE_HEIGHT = 100
# The frontend widens a node to fit its title (LGraphNode.computeSize: 30 px before the text,
# 0.33 x 30 after it, the text measured in 14 px Arial, about 6.3 px a character in our titles).
# 7 px a character leaves a margin for other fonts; the column gap takes what is left over.
TITLE_PADDING = 40
TITLE_CHAR_WIDTH = 7.0


def _title_width(title: str) -> float:
    """A width that fits ``title`` in the node's title bar, rounded up to 10 px."""
    return float(math.ceil((TITLE_PADDING + TITLE_CHAR_WIDTH * len(title)) / 10) * 10)


def _node_size(class_type: str, info: Mapping[str, Any] | None, n_inputs: int, n_outputs: int,
               title: str = "") -> list[float]:
    """A size at least as large as the one the frontend computes on loading (it grows a node
    whose size is smaller, which can make it overlap its neighbours)."""
    if info is None:  # notes
        return [max(400.0, _title_width(title)), 160.0]
    specs = input_specs(info)
    widgets = [s for s in specs if s.is_widget]
    n_widgets = len(widget_slots(info))
    width = 320.0
    # the frontend: 20 px a socket row, 24 px a widget and 8 px below the widgets, 6 px below all
    height = 10 + SLOT_HEIGHT * max(n_inputs, n_outputs, 1) + (WIDGET_HEIGHT * n_widgets + 4 if n_widgets else 0)
    if any(s.type == "STRING" and s.options.get("multiline") for s in widgets):
        width, height = 420.0, height + MULTILINE_HEIGHT
    if any(s.is_upload for s in specs) or (info.get("output_node") and any(s.type == "IMAGE" for s in specs)) \
            or info.get("name") in FRONTEND_WIDGETS:   # an image preview, or the frontend's own (SaveGLB's 3D view)
        height += PREVIEW_HEIGHT
    return [max(width, _title_width(title)), float(height)]


@dataclass
class _SpecNode:
    """A node of a :func:`build_canvas` spec while it is built: its canvas id, its key for
    connections, its definition (None for notes), and what wiring it fills in."""
    id: int
    key: str
    type: str
    info: Mapping[str, Any] | None
    raw: Mapping[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    widgets_values: list[Any] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)  # keys of the nodes its inputs come from

    @property
    def where(self) -> str:
        return f"spec node {self.key!r} ({self.type})"


def _spec_nodes(spec: Mapping[str, Any], node_info: NodeInfo) -> dict[str, _SpecNode]:
    """The spec's nodes by key, in spec order, numbered from 1, with their definitions."""
    raw_nodes = spec.get("nodes") or []
    if isinstance(raw_nodes, Mapping):
        raw_nodes = [{"key": k, **v} for k, v in raw_nodes.items()]
    nodes: dict[str, _SpecNode] = {}
    for i, raw in enumerate(raw_nodes, start=1):
        kind = raw.get("type")
        if not kind:
            raise CanvasError(f"spec node #{i}: no 'type'")
        key = str(raw.get("key", raw.get("id", kind)))
        if key in nodes:
            raise CanvasError(f"spec node #{i} ({kind}): key {key!r} is used twice; give each node a distinct 'key'")
        info = None
        if kind not in NOTE_TYPES:
            info = _lookup(node_info, kind)
            if info is None:
                raise CanvasError(f"spec node {key!r}: unknown node type {kind!r}")
        nodes[key] = _SpecNode(i, key, kind, info, raw)
    return nodes


def _wire(nodes: Mapping[str, _SpecNode]) -> list[list[Any]]:
    """Fill in every node's inputs, widget values and dependencies; return the links,
    numbered in node order, then input order."""
    links: list[list[Any]] = []
    for node in nodes.values():
        if node.info is None:
            node.widgets_values = [node.raw.get("text", "")]
        else:
            _wire_node(node, nodes, links)
    return links


def _wire_node(node: _SpecNode, nodes: Mapping[str, _SpecNode], links: list[list[Any]]) -> None:
    """Give ``node`` its input sockets (the sockets in definition order, then the widgets the
    spec connects, which become sockets), linking those the spec connects, and its widget values."""
    specs = input_specs(node.info)
    by_name = {s.name: s for s in specs}
    connections = dict(node.raw.get("inputs") or {})
    widgets = dict(node.raw.get("widgets") or {})
    _check_names(node, specs, connections, widgets)
    for s in specs:
        if s.is_widget:
            continue
        if s.name in connections:
            _connect(node, s, connections[s.name], nodes, links, widget=False)
        else:
            if not s.optional:
                raise CanvasError(f"{node.where}: required input {s.name!r} ({s.type}) is not connected")
            node.inputs.append({"name": s.name, "type": s.type, "link": None})
        if s.optional:
            node.inputs[-1]["shape"] = 7
    for s in specs:
        if s.is_widget and s.name in connections:
            _connect(node, s, connections[s.name], nodes, links, widget=True)
    node.widgets_values = _widget_values(node, by_name, widgets)


def _check_names(node: _SpecNode, specs: list[InputSpec], connections: Mapping[str, Any],
                 widgets: Mapping[str, Any]) -> None:
    """Refuse a connection to an input the node lacks, a value for a widget it lacks, and a
    widget given both a value and a connection."""
    by_name = {s.name: s for s in specs}
    for name in connections:
        if name not in by_name:
            raise CanvasError(f"{node.where}: no input {name!r}; inputs are {', '.join(by_name) or 'none'}")
    for name in widgets:
        if name not in by_name or not by_name[name].is_widget:
            names = [s.name for s in specs if s.is_widget]
            raise CanvasError(f"{node.where}: no widget {name!r}; widgets are {', '.join(names) or 'none'}")
        if name in connections:
            raise CanvasError(f"{node.where}: {name!r} is given both a value and a connection")


def _source(node: _SpecNode, name: str, target: Any,
            nodes: Mapping[str, _SpecNode]) -> tuple[_SpecNode, int, tuple[str, str, bool]]:
    """The node, output slot and output (name, type, is_list) that input ``name`` of ``node``
    is connected to: ``target`` is ``(node key, output name, output type or slot index)``."""
    if not isinstance(target, (list, tuple)) or len(target) != 2:
        raise CanvasError(f"{node.where}: input {name!r} must be connected as (node key, output), got {target!r}")
    src_key, out = str(target[0]), target[1]
    src = nodes.get(src_key)
    if src is None:
        raise CanvasError(f"{node.where}: input {name!r} refers to unknown node key {src_key!r}")
    if src.info is None:
        raise CanvasError(f"{node.where}: input {name!r} is connected to a note")
    outs = _outputs(src.info)
    if isinstance(out, int):
        slot = out
    else:
        names = [o[0] for o in outs]
        slot = names.index(out) if out in names else next((j for j, o in enumerate(outs) if o[1] == out), -1)
    if not 0 <= slot < len(outs):
        raise CanvasError(f"{node.where}: input {name!r}: node {src_key!r} ({src.type}) has no output {out!r}; "
                          f"outputs are {', '.join(o[0] for o in outs) or 'none'}")
    return src, slot, outs[slot]


def _connect(node: _SpecNode, spec_in: InputSpec, target: Any, nodes: Mapping[str, _SpecNode],
             links: list[list[Any]], widget: bool) -> None:
    """Link input ``spec_in`` of ``node`` to ``target`` (see :func:`_source`): add the link,
    the input socket (marked as a widget's if ``widget``) and the dependency."""
    name = spec_in.name
    src, slot, (out_name, out_type, _) = _source(node, name, target, nodes)
    if not _type_ok(out_type, spec_in.type):
        raise CanvasError(f"{node.where}: input {name!r} expects {spec_in.type} but output {out_name!r} "
                          f"of {src.key!r} is {out_type}")
    link_id = len(links) + 1
    links.append([link_id, src.id, slot, node.id, len(node.inputs), out_type])
    item = {"name": name, "type": spec_in.type, "link": link_id}
    if widget:
        item["widget"] = {"name": name}
    node.inputs.append(item)
    node.deps.append(src.key)


def _widget_values(node: _SpecNode, by_name: Mapping[str, InputSpec], widgets: Mapping[str, Any]) -> list[Any]:
    """The list ``widgets_values`` of ``node``: the spec's values or the defaults, with the
    frontend's extras (control values, "fixed" unless the spec's ``controls`` say otherwise;
    combo filters; the upload button's value)."""
    controls = dict(node.raw.get("controls") or {})
    values: list[Any] = []
    for kind, name in widget_slots(node.info):
        if kind == "value":
            shown = node.raw.get("linked_values") or {}
            value = widgets[name] if name in widgets else shown[name] if name in shown else by_name[name].default()
            if value is None:
                raise CanvasError(f"{node.where}: widget {name!r} has no default; give it a value")
            values.append(value)
        elif kind == "control":
            values.append(controls.get(name, "fixed"))
        elif kind == "filter":
            values.append("")
        elif kind == "frontend":
            values.append(FRONTEND_WIDGETS[node.info["name"]][1])
        else:
            values.append("image")
    return values


def _columns(nodes: Mapping[str, _SpecNode]) -> dict[str, int]:
    """Each node's column: the spec's ``column``, else its depth in the graph (the longest
    path from a node without inputs)."""
    depth: dict[str, int] = {}

    def column(key: str, stack: tuple = ()) -> int:
        if key in depth:
            return depth[key]
        if key in stack:
            raise CanvasError(f"spec node {key!r}: the connections form a cycle")
        node = nodes[key]
        d = node.raw.get("column")
        if d is None:
            d = 1 + max((column(k, stack + (key,)) for k in node.deps), default=-1)
        depth[key] = int(d)
        return depth[key]

    for key in nodes:
        column(key)
    return depth


def _execution_order(nodes: Mapping[str, _SpecNode], columns: Mapping[str, int]) -> dict[str, int]:
    """Each node's ``order``: by column, then spec order (a valid topological order)."""
    ordered = sorted(nodes.values(), key=lambda n: (columns[n.key], n.id))
    return {n.key: i for i, n in enumerate(ordered)}


def _node_sizes(nodes: Mapping[str, _SpecNode]) -> dict[str, list]:
    """Each node's size: the spec's ``size``, else one that fits its sockets and widgets."""
    sizes: dict[str, list] = {}
    for node in nodes.values():
        n_out = len(_outputs(node.info)) if node.info else 0
        n_in = len([i for i in node.inputs if "widget" not in i])
        title = str(node.raw.get("title") or (node.info or {}).get("display_name") or node.type)
        sizes[node.key] = list(node.raw.get("size") or _node_size(node.type, node.info, n_in, n_out, title))
    return sizes


def _column_xs(nodes: Mapping[str, _SpecNode], columns: Mapping[str, int], sizes: Mapping[str, list]) -> list[float]:
    """The left edge of each column: columns are as wide as their widest node, COLUMN_GAP apart."""
    n_cols = max(columns.values(), default=-1) + 1
    widths = [max((sizes[key][0] for key in nodes if columns[key] == c), default=0.0) for c in range(n_cols)]
    xs, x = [], ORIGIN[0]
    for c in range(n_cols):
        xs.append(x)
        x += widths[c] + COLUMN_GAP
    return xs


def _positions(nodes: Mapping[str, _SpecNode], columns: Mapping[str, int],
               sizes: Mapping[str, list]) -> dict[str, list[float]]:
    """Each node's position: the spec's ``pos``, else below the nodes before it (in spec
    order) in its column."""
    xs = _column_xs(nodes, columns, sizes)
    ys = {c: ORIGIN[1] for c in range(len(xs))}
    positions: dict[str, list[float]] = {}
    for node in nodes.values():
        c = columns[node.key]
        pos = node.raw.get("pos")
        if pos is None:
            pos = [xs[c], ys[c]]
            ys[c] += sizes[node.key][1] + ROW_GAP + 30  # 30: the title bar, not part of size
        positions[node.key] = list(map(float, pos))
    return positions


def _links_by_output(links: list[list[Any]]) -> dict[tuple[int, int], list[int]]:
    """The ids of the links leaving each (node id, output slot)."""
    by_output: dict[tuple[int, int], list[int]] = {}
    for link in links:
        by_output.setdefault((link[1], link[2]), []).append(link[0])
    return by_output


def _canvas_outputs(node: _SpecNode, by_output: Mapping[tuple[int, int], list[int]]) -> list[dict[str, Any]]:
    """The canvas entries of ``node``'s output slots, with the ids of the links leaving them."""
    if node.info is None:
        return []
    outputs = []
    for slot, (name, kind, is_list) in enumerate(_outputs(node.info)):
        out = {"name": name, "type": kind, "links": by_output.get((node.id, slot), []), "slot_index": slot}
        if is_list:
            out["shape"] = 6
        outputs.append(out)
    return outputs


def _canvas_node(node: _SpecNode, pos: list[float], size: list, order: int,
                 by_output: Mapping[tuple[int, int], list[int]]) -> dict[str, Any]:
    """The canvas entry of ``node`` (the keys in the frontend's order)."""
    entry = {
        "id": node.id,
        "type": node.type,
        "pos": [pos[0], pos[1]],
        "size": [float(v) for v in size],
        "flags": {"collapsed": True} if node.raw.get("collapsed") else {},
        "order": order,
        "mode": int(node.raw.get("mode", MODE_ALWAYS)),
        "inputs": node.inputs,
        "outputs": _canvas_outputs(node, by_output),
        "properties": {} if node.info is None else {"Node name for S&R": node.type},
        "widgets_values": node.widgets_values,
    }
    if node.raw.get("title"):
        entry["title"] = node.raw["title"]
    return entry


def _canvas_groups(groups: Any, positions: Mapping[str, list[float]],
                   sizes: Mapping[str, list]) -> list[dict[str, Any]]:
    """The canvas groups: each a box around its nodes (a 20 px margin, 70 px above for the title)."""
    out = []
    for g_index, group in enumerate(groups or [], start=1):
        keys = [str(k) for k in group.get("nodes") or []]
        missing = [k for k in keys if k not in positions]
        if missing or not keys:
            raise CanvasError(f"group {group.get('title')!r}: unknown node keys {missing or '(none given)'}")
        x0 = min(positions[k][0] for k in keys) - 20
        y0 = min(positions[k][1] for k in keys) - 70
        x1 = max(positions[k][0] + sizes[k][0] for k in keys) + 20
        y1 = max(positions[k][1] + sizes[k][1] for k in keys) + 20
        out.append({"id": g_index, "title": str(group.get("title", "")), "bounding": [x0, y0, x1 - x0, y1 - y0],
                    "color": group.get("color", "#3f789e"), "font_size": 24, "flags": {}})
    return out


# The banded layout (a spec with ``stages``): each stage's nodes stacked in columns of at most a
# common height, the stages side by side inside coloured groups, chosen so that the whole graph fits
# the editor's window at the largest scale; the view saved with the workflow shows it all.
#: the part of the canvas to fill, in screen pixels from its top left corner: left, top, width, height (in a
#: 1920 x 1080 browser window frontend 1.28's canvas is about 1857 x 1003, beside its sidebar and below its tabs)
VIEW_WINDOW = (20.0, 20.0, 1810.0, 955.0)
GROUP_GAP = 60.0
GROUP_MARGIN = 20.0
GROUP_HEADER = 70.0     # from a group's top to its first node's title bar
TITLE_BAR = 30.0        # above a node's ``pos``
NOTE_GAP = 40.0


def _banded_positions(nodes: Mapping[str, _SpecNode], columns: Mapping[str, int], sizes: Mapping[str, list],
                      stages: list[Mapping[str, Any]]) -> tuple[dict[str, list[float]], list[dict[str, Any]], dict[str, list]]:
    """Positions for a spec with ``stages`` (``[{"key", "title", "color"}]``, in reading order) whose
    nodes name their ``stage``: notes in a column of their own on the left, then each stage's nodes in
    graph order (depth, then spec order) filling columns top to bottom up to a height shared by all
    stages, the stages left to right. The height is the one at which the whole graph fits
    ``VIEW_WINDOW`` at the largest scale. Returns the positions, the groups (``{"title", "color",
    "nodes"}``, one per non-empty stage) and each node's footprint (a collapsed node's: its title bar)."""
    order = {key: i for i, key in enumerate(nodes)}
    notes = [k for k, n in nodes.items() if n.info is None]
    known = {str(s["key"]) for s in stages}
    for key, node in nodes.items():
        if node.info is not None and str(node.raw.get("stage")) not in known:
            raise CanvasError(f"{node.where}: stage {node.raw.get('stage')!r} is not one of {sorted(known)}")
    members = [(s, sorted((k for k, n in nodes.items() if n.info is not None and str(n.raw.get("stage")) == str(s["key"])),
                          key=lambda k: (columns[k], order[k]))) for s in stages]
    members = [(s, keys) for s, keys in members if keys]

    def footprint(key: str) -> tuple[float, float]:
        """Width and height below the title bar a node takes on the canvas (a collapsed one: none)."""
        return sizes[key][0], 0.0 if nodes[key].raw.get("collapsed") else sizes[key][1]

    def place(limit: float) -> tuple[dict[str, list[float]], float, float]:
        pos: dict[str, list[float]] = {}
        x, bottom = ORIGIN[0], ORIGIN[1]
        if notes:
            y = ORIGIN[1]
            for key in notes:
                pos[key] = [x, y]
                y += sizes[key][1] + ROW_GAP + TITLE_BAR
                bottom = max(bottom, y)
            x += max(sizes[k][0] for k in notes) + NOTE_GAP
        top = ORIGIN[1] + GROUP_HEADER - TITLE_BAR
        for _, keys in members:
            x += GROUP_MARGIN
            col_x, col_w, y = x, 0.0, top
            for key in keys:
                w, h = footprint(key)
                h += TITLE_BAR
                if y > top and y + h > top + limit:
                    col_x, y = col_x + col_w + COLUMN_GAP, top
                    col_w = 0.0
                pos[key] = [col_x, y + TITLE_BAR]
                col_w = max(col_w, w)
                y += h + ROW_GAP
                bottom = max(bottom, y - ROW_GAP + GROUP_MARGIN)
            x = col_x + col_w + GROUP_MARGIN + GROUP_GAP
        return pos, x - GROUP_GAP, bottom

    tallest = max((footprint(k)[1] + TITLE_BAR for _, keys in members for k in keys), default=100.0)
    total = sum(footprint(k)[1] + TITLE_BAR + ROW_GAP for _, keys in members for k in keys)
    best = None
    limit = tallest
    while True:
        pos, right, bottom = place(limit)
        w, h = right - ORIGIN[0] + 2 * GROUP_MARGIN, bottom - ORIGIN[1] + 2 * GROUP_MARGIN
        scale = min(VIEW_WINDOW[2] / w, VIEW_WINDOW[3] / h)
        if best is None or scale > best[0] + 1e-9:
            best = (scale, pos)
        if limit >= total:
            break
        limit += 20.0
    groups = [{"title": s.get("title", s["key"]), "color": s.get("color", "#3f789e"), "nodes": keys}
              for s, keys in members]
    shown = {k: list(footprint(k)) for k in nodes if nodes[k].info is not None}
    return best[1], groups, shown


def _saved_view(placed: list[tuple[list[float], list[float]]], groups: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``extra.ds``: the scale and offset at which the whole graph (each node's (position, footprint)
    with its title bar, the groups) fills ``VIEW_WINDOW``, centred (the frontend draws a point p at
    (p + offset) * scale)."""
    boxes = [(pos[0], pos[1] - TITLE_BAR, pos[0] + size[0], pos[1] + size[1]) for pos, size in placed]
    boxes += [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2], g["bounding"][1] + g["bounding"][3])
              for g in groups]
    x0, y0 = min(b[0] for b in boxes) - GROUP_MARGIN, min(b[1] for b in boxes) - GROUP_MARGIN
    x1, y1 = max(b[2] for b in boxes) + GROUP_MARGIN, max(b[3] for b in boxes) + GROUP_MARGIN
    left, top, width, height = VIEW_WINDOW
    scale = math.floor(min(width / (x1 - x0), height / (y1 - y0), 1.0) * 100) / 100
    offset = [left / scale + (width / scale - (x1 - x0)) / 2 - x0, top / scale + (height / scale - (y1 - y0)) / 2 - y0]
    return {"scale": scale, "offset": [round(offset[0], 1), round(offset[1], 1)]}


def build_canvas(spec: Mapping[str, Any], node_info: NodeInfo) -> dict[str, Any]:
    """Write a canvas workflow (frontend format 0.4) from a short description.

    ``spec = {"nodes": [...], "groups": [...]}`` where each node is a dict:
    ``key`` (a name for connections; defaults to the type), ``type``, ``widgets``
    (``{input name: value}``; others keep their defaults), ``inputs`` (``{input name:
    (node key, output name or index)}``; a widget input given here becomes a socket),
    optional ``title``, ``mode``, ``linked_values`` (``{widget: value}``: what a widget fed by a link
    shows), ``controls`` (``{input: "fixed"|"randomize"|...}``, default
    "fixed" so workflows are reproducible), ``pos``/``size`` overrides. Notes are
    ``{"type": "MarkdownNote" or "Note", "text": ...}``. ``nodes`` may also be a dict keyed by
    node key. ``groups`` are ``{"title": ..., "nodes": [keys]}``. Or, instead of ``groups``,
    ``stages`` (``[{"key", "title", "color"}]`` in reading order) with each node's ``stage``: the
    nodes are then laid out in a coloured group per stage, side by side, at the proportions that
    fit the editor's window, and the saved view (``extra.ds``) shows the whole graph.

    Nodes are numbered in the given order and laid out in columns by their depth in the graph.
    """
    nodes = _spec_nodes(spec, node_info)
    links = _wire(nodes)
    columns = _columns(nodes)
    order = _execution_order(nodes, columns)
    sizes = _node_sizes(nodes)
    group_specs = list(spec.get("groups") or [])
    if spec.get("stages"):
        if group_specs:
            raise CanvasError("a spec gives either 'stages' (groups laid out for it) or 'groups', not both")
        positions, group_specs, shown = _banded_positions(nodes, columns, sizes, list(spec["stages"]))
    else:
        positions, shown = _positions(nodes, columns, sizes), {}
    shown = {k: shown.get(k, sizes[k]) for k in nodes}
    by_output = _links_by_output(links)
    canvas_nodes = [_canvas_node(n, positions[n.key], sizes[n.key], order[n.key], by_output) for n in nodes.values()]
    groups = _canvas_groups(group_specs, positions, shown)
    extra = copy.deepcopy(dict(spec.get("extra") or {}))
    if "ds" not in extra:
        extra["ds"] = (_saved_view([(positions[k], shown[k]) for k in nodes], groups) if spec.get("stages")
                       else {"scale": 1.0, "offset": [0.0, 0.0]})
    return {
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": canvas_nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": extra,
        "version": 0.4,
    }
