"""Subgraphs in canvas workflows: expanding them for the executor, and making them.

ComfyUI's frontend (1.28) keeps a workflow's subgraphs in ``definitions.subgraphs``; an instance of
one on the canvas is a node whose ``type`` is the subgraph's ``id`` (a UUID). :func:`flatten` expands
every instance, nested ones too, into plain nodes and links, as the frontend does before it queues a
workflow (``graphToPrompt`` with ``ExecutableNodeDTO``), so :func:`headless.canvas.canvas_to_api`
converts the result like any other canvas; it calls :func:`flatten` itself when a workflow has
subgraphs. :func:`wrap` goes the other way, as the editor's "Convert to Subgraph" does: a set of
nodes of a canvas becomes one subgraph instance. :func:`apply_subgraph` is how
``workshop.make_workflows`` writes the pack's one-node templates with it.

Host-agnostic: plain JSON in, plain JSON out; no ComfyUI, no torch.

The format, from the frontend 1.28.8 (``src/platform/workflow/validation/schemas/workflowSchema.ts``:
``zSubgraphDefinition``, ``zSubgraphIO``; ``src/lib/litegraph/src/LGraph.ts``: ``convertToSubgraph``,
``Subgraph.asSerialisable``; ``src/lib/litegraph/src/subgraph/``):

- A definition is a version-1 graph: ``id`` (UUID), ``version`` 1, ``state`` (``lastGroupId``,
  ``lastNodeId``, ``lastLinkId``, ``lastRerouteId``), ``revision``, ``name``, ``nodes``, ``links``
  as objects (``{id, origin_id, origin_slot, target_id, target_slot, type}``), ``groups``,
  ``inputNode`` / ``outputNode`` (``{id: -10 / -20, bounding: [x, y, w, h]}``), ``inputs`` /
  ``outputs`` (``{id: UUID, name, type, linkIds}``), ``widgets``, ``config``, ``extra``. Every
  definition, nested ones included, sits in the root's ``definitions.subgraphs``.
- Inside, a link from the subgraph's input ``k`` has ``origin_id`` -10 and ``origin_slot`` k; a
  link to its output ``k`` has ``target_id`` -20 and ``target_slot`` k. ``inputs[k].linkIds``
  lists the links leaving input k, ``outputs[k].linkIds`` the one reaching output k.
- The instance's ``inputs`` / ``outputs`` are the subgraph's, by index (``SubgraphNode.configure``).
  A subgraph input linked inside to a widget's input gives the instance a widget of that input's
  name (``_internalConfigureAfterSlots``): its value is in the instance's ``widgets_values``, in
  input order, and is used while the instance's input is not linked (``ExecutableNodeDTO.resolveInput``).
- Promoted widgets (``src/core/graph/subgraph/proxyWidget.ts``): ``properties.proxyWidgets`` on the
  instance lists ``[inner node id, widget name]`` pairs, ``["-1", name]`` for the instance's own
  widgets above. A promoted widget shows the inner widget itself: its value is the inner node's,
  in the definition, and the instance's ``widgets_values`` holds null in its place.
- Executed, an inner node's id is the instances' ids and its own joined by ":" ("12:5",
  "12:7:3"; ``ExecutableNodeDTO.id``). A bypassed instance passes its inputs through as a bypassed
  node does, the subgraph not entered (``resolveOutput``); the editor's Bypass and Mute set the
  same mode on every node inside (``useSelectedLiteGraphItems.toggleSelectedNodesMode``), so a
  muted or bypassed instance runs nothing inside.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .canvas import (MODE_BYPASS, MODE_MUTED, CanvasError, NodeInfo, _lookup, _parse_links, input_specs,
                     widget_slots)

__all__ = [
    "SUBGRAPH_INPUT_ID",
    "SUBGRAPH_OUTPUT_ID",
    "FRONT_AND_RESULT",
    "subgraph_definitions",
    "flatten",
    "wrap",
    "edit_nodes",
    "spec_ids",
    "apply_subgraph",
]

SUBGRAPH_INPUT_ID = -10    # LiteGraph's SUBGRAPH_INPUT_ID: the origin of the links from a subgraph's inputs
SUBGRAPH_OUTPUT_ID = -20   # SUBGRAPH_OUTPUT_ID: the target of the links to its outputs
INACTIVE = (MODE_MUTED, MODE_BYPASS)
UUID_NAMESPACE = uuid.UUID("6f1d2a4e-7c1b-5e0a-9b1e-1c0ffee0f10e")   # the pack's subgraph ids: uuid5 of this, the name, the nodes


def subgraph_definitions(workflow: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The workflow's subgraph definitions by id (``definitions.subgraphs``, and any nested ``definitions``)."""
    found: dict[str, Mapping[str, Any]] = {}

    def collect(graph: Mapping[str, Any]) -> None:
        for sub in ((graph.get("definitions") or {}).get("subgraphs") or []):
            if isinstance(sub, Mapping) and sub.get("id") is not None:
                found.setdefault(str(sub["id"]), sub)
                collect(sub)

    collect(workflow)
    return found


# --------------------------------------------------------------------------------------------
# flatten: subgraph instances -> plain nodes
# --------------------------------------------------------------------------------------------

class _Scope:
    """One graph as the executor sees it: the root, or a definition under the path of instance ids
    (``path``) that leads to it, with that instance and the scope it sits in."""

    def __init__(self, graph: Mapping[str, Any], path: tuple[str, ...], instance: Mapping[str, Any] | None,
                 parent: _Scope | None):
        self.graph, self.path, self.instance, self.parent = graph, path, instance, parent
        self.nodes = {str(n.get("id")): n for n in graph.get("nodes") or []}
        self.links = _parse_links(graph.get("links"))
        self.name = str(graph.get("name") or "")

    def flat_id(self, node_id: Any) -> Any:
        return ":".join(self.path + (str(node_id),)) if self.path else node_id

    def where(self) -> str:
        return f" in subgraph {self.name!r} (instance {':'.join(self.path)})" if self.path else ""


class _Flat:
    """A resolved origin: a flat node's output, or a value (an instance's widget)."""

    def __init__(self, node_id: Any = None, slot: int = 0, value: Any = None, is_value: bool = False):
        self.node_id, self.slot, self.value, self.is_value = node_id, slot, value, is_value


def _proxy_widgets(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The instance's ``properties.proxyWidgets`` as (node id, widget name) pairs (a JSON string is read too)."""
    raw = (node.get("properties") or {}).get("proxyWidgets")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    return [(str(p[0]), str(p[1])) for p in raw or [] if isinstance(p, (list, tuple)) and len(p) == 2]


def _instance_inputs(instance: Mapping[str, Any], definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The instance's input slots after loading: the subgraph's inputs, overlaid by index with the
    file's (``SubgraphNode.configure``)."""
    slots: list[Mapping[str, Any]] = list(definition.get("inputs") or [])
    for i, saved in enumerate(instance.get("inputs") or []):
        if i < len(slots):
            slots[i] = saved
        else:
            slots.append(saved)
    return slots


def _native_widgets(instance: Mapping[str, Any], definition: Mapping[str, Any]) -> list[str]:
    """The names of the instance's own widgets, in order: each input whose subgraph input (by name)
    is linked inside to a widget's input (``SubgraphNode._internalConfigureAfterSlots``)."""
    by_name = {str(i.get("name")): i for i in definition.get("inputs") or []}
    nodes = {str(n.get("id")): n for n in definition.get("nodes") or []}
    links = _parse_links(definition.get("links"))
    names = []
    for slot in _instance_inputs(instance, definition):
        sub = by_name.get(str(slot.get("name")))
        if sub is None:
            continue
        for link_id in sub.get("linkIds") or []:
            link = links.get(link_id, links.get(str(link_id)))
            target = nodes.get(str(link.target_id)) if link is not None else None
            inputs = (target or {}).get("inputs") or []
            if link is not None and link.target_slot < len(inputs) and inputs[link.target_slot].get("widget"):
                names.append(str(slot.get("name")))
                break
    return names


def _native_widget_values(instance: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the instance's own widgets by name: ``widgets_values`` given in order (``LGraphNode
    .configure``), then again by ``proxyWidgets``' positions for its ``"-1"`` entries (the
    frontend's ``onConfigure``). A null is no value."""
    names = _native_widgets(instance, definition)
    raw = instance.get("widgets_values")
    values: dict[str, Any] = {}
    if isinstance(raw, Mapping):
        values = {n: raw[n] for n in names if n in raw}
    elif isinstance(raw, list):
        values = {n: raw[i] for i, n in enumerate(names) if i < len(raw)}
        for i, (node_id, name) in enumerate(_proxy_widgets(instance)):
            if node_id == "-1" and name in names and i < len(raw) and raw[i] is not None:
                values[name] = raw[i]
    return {k: v for k, v in values.items() if v is not None}


class _Flattener:
    def __init__(self, workflow: Mapping[str, Any]):
        self.workflow = workflow
        self.defs = subgraph_definitions(workflow)
        self.scopes: dict[tuple[str, ...], _Scope] = {}
        self.entries: list[tuple[_Scope, Mapping[str, Any]]] = []   # the flat nodes: (scope, node)
        self.links: list[list[Any]] = []
        self.values: dict[tuple, dict[str, Any]] = {}    # the primitives standing for instances' widget values

    # -- expanding ------------------------------------------------------------------------------
    def is_instance(self, node: Mapping[str, Any]) -> bool:
        return str(node.get("type")) in self.defs

    def expand(self, scope: _Scope, chain: tuple[str, ...] = ()) -> None:
        self.scopes[scope.path] = scope
        for node in scope.graph.get("nodes") or []:
            if self.is_instance(node) and node.get("mode") not in INACTIVE:
                kind = str(node["type"])
                if kind in chain:
                    raise CanvasError(f"node {scope.flat_id(node.get('id'))} ({kind}){scope.where()}: "
                                      f"subgraph {self.defs[kind].get('name')!r} contains itself")
                self.expand(_Scope(self.defs[kind], scope.path + (str(node.get("id")),), node, scope), chain + (kind,))
            else:
                self.entries.append((scope, node))

    # -- resolving links --------------------------------------------------------------------------
    def resolve_link(self, scope: _Scope, link_id: Any, visited: set) -> _Flat | None:
        key = (scope.path, str(link_id))
        if key in visited:
            raise CanvasError(f"link {link_id}{scope.where()}: circular through the subgraph's inputs and outputs")
        visited.add(key)
        link = scope.links.get(link_id, scope.links.get(str(link_id)))
        if link is None:
            raise CanvasError(f"link {link_id}{scope.where()} is not in the links of its graph")
        if str(link.origin_id) == str(SUBGRAPH_INPUT_ID) and scope.instance is not None:
            return self.resolve_instance_input(scope, link.origin_slot, visited)
        origin = scope.nodes.get(str(link.origin_id))
        if origin is None:
            raise CanvasError(f"link {link_id}{scope.where()} comes from node {link.origin_id}, which is not there")
        return self.resolve_output(scope, origin, link.origin_slot, visited)

    def resolve_output(self, scope: _Scope, node: Mapping[str, Any], slot: int, visited: set) -> _Flat | None:
        if self.is_instance(node) and node.get("mode") not in INACTIVE:
            inner = self.scopes[scope.path + (str(node.get("id")),)]
            outputs = inner.graph.get("outputs") or []
            if slot >= len(outputs):
                raise CanvasError(f"node {scope.flat_id(node.get('id'))}{scope.where()}: subgraph "
                                  f"{inner.name!r} has no output {slot}")
            link_ids = outputs[slot].get("linkIds") or []
            return self.resolve_link(inner, link_ids[0], visited) if link_ids else None
        return _Flat(scope.flat_id(node.get("id")), int(slot))

    def resolve_instance_input(self, scope: _Scope, index: int, visited: set) -> _Flat | None:
        """Input ``index`` of the instance ``scope`` is inside of: its link, or its widget's value, or nothing."""
        instance, parent = scope.instance, scope.parent
        slots = instance.get("inputs") or []
        if index < len(slots) and slots[index].get("link") is not None:
            return self.resolve_link(parent, slots[index]["link"], visited)
        names = _instance_inputs(instance, scope.graph)
        name = str(names[index].get("name")) if index < len(names) else None
        values = self.values.setdefault(scope.path, _native_widget_values(instance, scope.graph))
        if name in values:
            return _Flat(value=values[name], is_value=True)
        return None

    # -- the flat workflow ----------------------------------------------------------------------
    def add_link(self, origin: Any, slot: int, target: Any, target_slot: int, kind: Any) -> int:
        link_id = len(self.links) + 1
        self.links.append([link_id, origin, slot, target, target_slot, kind])
        return link_id

    def run(self) -> dict[str, Any]:
        root = _Scope(self.workflow, (), None, None)
        self.expand(root)
        nodes: list[dict[str, Any]] = []
        primitives: dict[tuple, dict[str, Any]] = {}
        for scope, node in self.entries:
            flat = copy.deepcopy(dict(node))
            flat["id"] = scope.flat_id(node.get("id"))
            for index, inp in enumerate(flat.get("inputs") or []):
                link_id, inp["link"] = inp.get("link"), None
                if link_id is None:
                    continue
                origin = self.resolve_link(scope, link_id, set())
                if origin is None:
                    continue
                if origin.is_value:
                    origin = self.primitive(primitives, scope, flat["id"], index, inp, origin.value)
                inp["link"] = self.add_link(origin.node_id, origin.slot, flat["id"], index, inp.get("type"))
            nodes.append(flat)
        nodes += primitives.values()
        by_output: dict[tuple[str, int], list[int]] = {}
        for link in self.links:
            by_output.setdefault((str(link[1]), int(link[2])), []).append(link[0])
        for node in nodes:
            for slot, out in enumerate(node.get("outputs") or []):
                out["links"] = by_output.get((str(node["id"]), slot), [])
        flat_workflow = {k: copy.deepcopy(v) for k, v in self.workflow.items() if k != "definitions"}
        flat_workflow.update(nodes=nodes, links=self.links, last_link_id=len(self.links))
        if flat_workflow.get("version") == 1:   # the flat links are in the 0.4 form
            flat_workflow["version"] = 0.4
        return flat_workflow

    def primitive(self, primitives: dict, scope: _Scope, target: Any, index: int, inp: Mapping[str, Any],
                  value: Any) -> _Flat:
        """A PrimitiveNode holding an instance's widget value for one input (the converter gives its value to
        the input it feeds)."""
        key = (target, index)
        node_id = f"{target}:widget:{index}"
        primitives[key] = {"id": node_id, "type": "PrimitiveNode", "pos": [0.0, 0.0], "size": [210.0, 58.0],
                           "flags": {}, "order": 0, "mode": 0, "inputs": [],
                           "outputs": [{"name": "connect to widget input", "type": inp.get("type"), "links": []}],
                           "properties": {}, "widgets_values": [value],
                           "title": f"{inp.get('name')} (from the subgraph node's widget)"}
        return _Flat(node_id, 0)


def flatten(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow with every subgraph instance (nested ones too) expanded into plain nodes and links,
    as the frontend's ``graphToPrompt`` sees it:

    - an inner node's id is the path of instance ids and its own, joined by ":" ("12:5"); the
      root's nodes keep theirs; links are renumbered (0.4 form);
    - a link into an instance's input continues inside to every node that input feeds; a link
      from an instance's output comes from the node inside that feeds it (through any depth of
      instances, and straight from the instance's own input where the subgraph passes it through);
    - an instance's input left unlinked gives its widget's value (the instance's ``widgets_values``:
      the subgraph input linked inside to a widget's input) to the nodes inside, as a PrimitiveNode
      (not part of the API prompt); promoted widgets (``properties.proxyWidgets``) keep their value
      on the inner node, where the frontend keeps it;
    - a muted or bypassed instance stays one node of that mode (the converter leaves it out, and
      passes a bypassed one's inputs through) and nothing inside it runs.

    The result has no ``definitions``. Raises :class:`CanvasError` for a subgraph that contains
    itself or a link that leads nowhere."""
    if not isinstance(workflow, Mapping) or not isinstance(workflow.get("nodes"), list):
        raise CanvasError("not a canvas workflow: expected a JSON object with a 'nodes' list")
    return _Flattener(workflow).run()


# --------------------------------------------------------------------------------------------
# wrap: nodes -> one subgraph instance
# --------------------------------------------------------------------------------------------

#: the node types a one-node template keeps on the canvas around its subgraph (:func:`edit_nodes`):
#: notes, the model and image loaders and scalers, the prompts, masks drawn with nodes, the outputs
FRONT_AND_RESULT = frozenset({
    "MarkdownNote", "Note", "Reroute", "PrimitiveNode",
    "CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "VAELoader",
    "InvertEditToyModel", "InvertEditDemoModel",
    "LoadImage", "LoadImageMask", "ImageScale", "ImageScaleBy", "ImageScaleToTotalPixels",
    "CLIPTextEncode", "PrimitiveString", "PrimitiveStringMultiline",
    "SolidMask", "MaskComposite",
    "SaveImage", "PreviewImage",
})
TITLE_BAR = 30.0      # LiteGraph.NODE_TITLE_HEIGHT: above a node's pos
IO_NODE_WIDTH = 120.0
IO_NODE_GAP = 50.0    # convertToSubgraph: the input/output nodes 50 px outside the nodes' box
GAP = 60.0            # between the subgraph node's group and the next one
SLOT_HEIGHT, WIDGET_HEIGHT, MULTILINE_HEIGHT = 20.0, 24.0, 100.0
NOTE_WIDTH = 400.0


def _uuid(*parts: Any) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, "\x1f".join(map(str, parts))))


def _next_unique_name(name: str, existing: Iterable[str]) -> str:
    """LiteGraph's ``nextUniqueName``: name, name_1, name_2, ..."""
    taken, base, i = set(existing), name, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _box(node: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """The node's box on the canvas, its title bar included (only that where it is collapsed): x0, y0, x1, y1."""
    (x, y), (w, h) = node.get("pos") or (0, 0), node.get("size") or (0, 0)
    collapsed = bool((node.get("flags") or {}).get("collapsed"))
    return float(x), float(y) - TITLE_BAR, float(x) + float(w), float(y) + (0.0 if collapsed else float(h))


def _union(boxes: Iterable[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _group_box(group: Mapping[str, Any]) -> tuple[float, float, float, float]:
    x, y, w, h = (list(group.get("bounding") or [0, 0, 0, 0]) + [0, 0, 0, 0])[:4]
    return float(x), float(y), float(x) + float(w), float(y) + float(h)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _contains_centre(group: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """LGraphGroup.recomputeInsideNodes: a group holds the nodes whose box's centre it contains."""
    gx0, gy0, gx1, gy1 = _group_box(group)
    x0, y0, x1, y1 = _box(node)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return gx0 <= cx <= gx1 and gy0 <= cy <= gy1


def _refit(group: Mapping[str, Any], before: list[Mapping[str, Any]], after: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``group`` drawn around the nodes ``after`` with the margins it had around ``before``."""
    gx0, gy0, gx1, gy1 = _group_box(group)
    bx0, by0, bx1, by1 = _union(map(_box, before))
    ax0, ay0, ax1, ay1 = _union(map(_box, after))
    x0, y0 = ax0 - (bx0 - gx0), ay0 - (by0 - gy0)
    x1, y1 = ax1 + (gx1 - bx1), ay1 + (gy1 - by1)
    return dict(copy.deepcopy(dict(group)), bounding=[x0, y0, x1 - x0, y1 - y0])


def _widget_value(node: Mapping[str, Any], name: str, node_info: NodeInfo | None) -> Any:
    """The value of widget ``name`` of a canvas node (None where unknown)."""
    raw = node.get("widgets_values")
    if isinstance(raw, Mapping):
        return raw.get(name)
    info = _lookup(node_info, str(node.get("type"))) if node_info is not None else None
    if info is None or not isinstance(raw, list):
        return None
    slots = widget_slots(info)
    if len(slots) != len(raw):
        return None
    return next((v for (kind, n), v in zip(slots, raw) if kind == "value" and n == name), None)


def _widget_spec(node: Mapping[str, Any], name: str, node_info: NodeInfo | None):
    info = _lookup(node_info, str(node.get("type"))) if node_info is not None else None
    return None if info is None else next((s for s in input_specs(info) if s.name == name and s.is_widget), None)


def _instance_size(name: str, inputs: list[dict], outputs: list[dict], widgets: list[Any]) -> list[float]:
    """A size at least the frontend's for the subgraph node: title, sockets, widgets (``widgets``:
    their input specs, None where unknown; a multiline text is a text box)."""
    longest_in = max((len(str(i.get("label") or i["name"])) for i in inputs if "widget" not in i), default=0)
    longest_out = max((len(str(o.get("label") or o["name"])) for o in outputs), default=0)
    multiline = any(s is not None and s.type == "STRING" and s.options.get("multiline") for s in widgets)
    width = max(340.0, 40 + 7.0 * len(name), 60 + 7.0 * (longest_in + longest_out), 420.0 if multiline else 0.0)
    sockets = max(len([i for i in inputs if "widget" not in i]), len(outputs), 1)
    height = 10 + SLOT_HEIGHT * sockets + (WIDGET_HEIGHT * len(widgets) + 8 if widgets else 0)
    height += sum(MULTILINE_HEIGHT for s in widgets if s is not None and s.type == "STRING" and s.options.get("multiline"))
    return [float(round(width / 10) * 10), float(round(height / 10) * 10)]


def _note_height(text: str) -> float:
    lines = sum(max(1, -(-len(p) // 55)) for p in text.split("\n"))
    return float(60 + 21 * lines)


def _ids(canvas: Mapping[str, Any], keys_or_ids: Iterable[Any], keys: Mapping[str, Any] | None) -> list[str]:
    present = {str(n.get("id")) for n in canvas.get("nodes") or []}
    out = []
    for k in keys_or_ids:
        node_id = str(keys[k]) if keys is not None and k in keys else str(k)
        if node_id not in present:
            raise CanvasError(f"wrap: no node {k!r} in the canvas")
        if node_id not in out:
            out.append(node_id)
    if not out:
        raise CanvasError("wrap: no nodes to put in the subgraph")
    return out


def wrap(canvas: Mapping[str, Any], keys_or_ids: Iterable[Any], name: str, description: str = "", *,
         promote: Iterable[tuple[Any, str]] = (), keys: Mapping[str, Any] | None = None,
         labels: Mapping[str, str] | None = None, node_info: NodeInfo | None = None) -> dict[str, Any]:
    """The canvas with the nodes ``keys_or_ids`` (canvas ids, or keys of ``keys``: {key: id}) made one
    subgraph instance, as the editor's "Convert to Subgraph" makes it (frontend 1.28.8):

    - the links crossing the selection's edge become the subgraph's inputs and outputs: one input
      per outer output feeding the selection, named as the first input it feeds (``name``,
      ``name_1``, ... where taken), one output per inner output feeding the rest, named as that
      output; a subgraph input that feeds a widget's input gives the subgraph node that widget;
    - the inner nodes and links keep their ids and places; the subgraph node takes the next node
      id and stands where the selection began, the nodes after it moved up to it; a group whose
      nodes all moved goes inside, one that keeps some is redrawn around what it keeps (and a copy
      inside around the rest), and the subgraph node gets a group of its own where groups were;
    - ``promote``: (key or id, widget name) of inner widgets shown on the subgraph node (promoted
      widgets, ``properties.proxyWidgets``); a widget fed by a link is not promoted;
    - ``labels``: {input or output name: the label shown for it} (the editor's "Rename Slot");
    - ``description``: a note inside the subgraph, beside its nodes.

    ``node_info`` (as for :func:`canvas_to_api`) sizes the subgraph node and reads the values of the
    widgets it shows; without it they are estimated. The subgraph's id is a UUID made from ``name``
    and the nodes (the same canvas gives the same file). :func:`flatten` of the result gives the same API prompt
    as the canvas, up to the inner nodes' ids."""
    canvas = copy.deepcopy(dict(canvas))
    inside = _ids(canvas, keys_or_ids, keys)
    keyed = {k: str(v) for k, v in (keys or {}).items()}
    labels = dict(labels or {})
    nodes = {str(n.get("id")): n for n in canvas["nodes"]}
    order = {node_id: i for i, node_id in enumerate(nodes)}
    chosen = set(inside)
    raw_links = canvas.get("links") or []
    as_lists = [link if isinstance(link, (list, tuple)) else
                [link["id"], link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"],
                 link.get("type")] for link in raw_links if link is not None]
    internal, into, out_of, outside = [], [], [], []
    for link in as_lists:
        a, b = str(link[1]) in chosen, str(link[3]) in chosen
        (internal if a and b else into if b else out_of if a else outside).append(list(link))
    last_node = max([int(canvas.get("last_node_id") or 0)] + [int(i) for i in nodes if i.lstrip("-").isdigit()])
    last_link = max([int(canvas.get("last_link_id") or 0)] + [int(link[0]) for link in as_lists])
    instance_id = last_node + 1
    note_id = last_node + 2 if description else None
    content = json.dumps([[n.get("id"), n.get("type"), n.get("widgets_values")] for i, n in nodes.items() if i in chosen]
                         + sorted((link[:5] for link in internal + into + out_of), key=str), sort_keys=True, default=str)
    sg_id = _uuid("subgraph", name, content)   # the same nodes give the same id; other nodes of that name another

    # -- inputs: one per outer output, in the order of the inputs they feed
    into.sort(key=lambda link: (order[str(link[3])], int(link[4])))
    groups_in: dict[tuple[str, int], list[list[Any]]] = {}
    for link in into:
        groups_in.setdefault((str(link[1]), int(link[2])), []).append(link)
    sg_inputs, inst_inputs, inner_links, outer_links = [], [], [], list(outside)
    for k, ((origin, slot), links) in enumerate(groups_in.items()):
        first = nodes[str(links[0][3])]["inputs"][int(links[0][4])]
        kind = str(first.get("type") or links[0][5])
        name_k = _next_unique_name(str(first.get("name")), [i["name"] for i in sg_inputs])
        sg_inputs.append({"id": _uuid(sg_id, "input", k, name_k), "name": name_k, "type": kind,
                          "linkIds": [int(link[0]) for link in links]})
        for link in links:
            inner_links.append({"id": int(link[0]), "origin_id": SUBGRAPH_INPUT_ID, "origin_slot": k,
                                "target_id": link[3], "target_slot": int(link[4]), "type": kind})
        last_link += 1
        outer_links.append([last_link, links[0][1], slot, instance_id, k, links[0][5]])
        source = nodes[origin]["outputs"][slot]
        source["links"] = [i for i in source.get("links") or [] if i not in {link[0] for link in links}] + [last_link]
        entry: dict[str, Any] = {"name": name_k, "type": kind, "link": last_link}
        if name_k in labels:
            sg_inputs[-1]["label"] = entry["label"] = str(labels[name_k])
        if any(nodes[str(link[3])]["inputs"][int(link[4])].get("widget") for link in links):
            entry["widget"] = {"name": name_k}
        inst_inputs.append(entry)

    # -- outputs: one per inner output feeding the rest, in the order of the outputs
    out_of.sort(key=lambda link: (order[str(link[1])], int(link[2]), order[str(link[3])], int(link[4])))
    groups_out: dict[tuple[str, int], list[list[Any]]] = {}
    for link in out_of:
        groups_out.setdefault((str(link[1]), int(link[2])), []).append(link)
    sg_outputs, inst_outputs = [], []
    for j, ((origin, slot), links) in enumerate(groups_out.items()):
        source = nodes[origin]["outputs"][slot]
        kind = str(source.get("type") or links[0][5])
        name_j = _next_unique_name(str(source.get("name") or kind), [o["name"] for o in sg_outputs])
        inner_id = int(links[0][0])
        sg_outputs.append({"id": _uuid(sg_id, "output", j, name_j), "name": name_j, "type": kind, "linkIds": [inner_id]})
        inner_links.append({"id": inner_id, "origin_id": links[0][1], "origin_slot": slot,
                            "target_id": SUBGRAPH_OUTPUT_ID, "target_slot": j, "type": kind})
        source["links"] = [i for i in source.get("links") or [] if i not in {link[0] for link in links}] + [inner_id]
        new_ids = []
        for link in links:
            last_link += 1
            outer_links.append([last_link, instance_id, j, link[3], int(link[4]), link[5]])
            nodes[str(link[3])]["inputs"][int(link[4])]["link"] = last_link
            new_ids.append(last_link)
        inst_outputs.append({"name": name_j, "type": kind, "links": new_ids})
        if name_j in labels:
            sg_outputs[-1]["label"] = inst_outputs[-1]["label"] = str(labels[name_j])
    inner_links += [{"id": int(link[0]), "origin_id": link[1], "origin_slot": int(link[2]), "target_id": link[3],
                     "target_slot": int(link[4]), "type": link[5]} for link in internal]
    inner_links.sort(key=lambda link: link["id"])
    outer_links.sort(key=lambda link: link[0])

    # -- the subgraph node's widgets: its own (a subgraph input feeding a widget), then the promoted ones
    natives = [i["name"] for i in inst_inputs if "widget" in i]
    native_values, shown_specs = [], []
    for entry in inst_inputs:
        if "widget" not in entry:
            continue
        k = next(i for i, s in enumerate(sg_inputs) if s["name"] == entry["name"])
        first = next(link for link in inner_links if link["origin_id"] == SUBGRAPH_INPUT_ID and link["origin_slot"] == k
                     and nodes[str(link["target_id"])]["inputs"][link["target_slot"]].get("widget"))
        target = nodes[str(first["target_id"])]
        widget = target["inputs"][first["target_slot"]]["widget"]["name"]
        native_values.append(_widget_value(target, widget, node_info))
        shown_specs.append(_widget_spec(target, widget, node_info))
    proxies = []
    for who, widget in promote:
        node_id = keyed.get(who, str(who)) if not isinstance(who, int) else str(who)
        if node_id not in chosen:
            raise CanvasError(f"wrap: cannot promote {widget!r} of {who!r}: the node is not in the subgraph")
        inner = nodes[node_id]
        spec = _widget_spec(inner, widget, node_info)
        if node_info is not None and spec is None:
            raise CanvasError(f"wrap: node {who!r} ({inner.get('type')}) has no widget {widget!r}")
        if any(i.get("name") == widget and i.get("link") is not None for i in inner.get("inputs") or []):
            continue   # fed by a link: the editor would take the promotion back
        if widget in natives:
            continue   # the subgraph node's own widget of that name would be dropped (proxyWidgets' setter)
        proxies.append([node_id, widget])
        shown_specs.append(spec)

    # -- the canvas around it
    inner_nodes = [nodes[i] for i in sorted(inside, key=order.get)]
    region = _union(map(_box, inner_nodes))
    size = _instance_size(name, inst_inputs, inst_outputs, shown_specs)
    groups = canvas.get("groups") or []
    members = {id(g): [n for n in nodes.values() if _contains_centre(g, n)] for g in groups}
    top_groups, inner_groups, moved, split = [], [], [], []
    for g in groups:
        held = members[id(g)]
        kept = [n for n in held if str(n.get("id")) not in chosen]
        taken = [n for n in held if str(n.get("id")) in chosen]
        if taken and not kept:
            inner_groups.append(copy.deepcopy(g))
            moved.append(g)
        elif taken:
            top_groups.append(_refit(g, held, kept))
            inner_groups.append(_refit(g, held, taken))
            split.append((inner_groups[-1], {str(n.get("id")) for n in taken}))
        else:
            top_groups.append(copy.deepcopy(g))
    rest = [n for i, n in nodes.items() if i not in chosen]
    if moved:   # the subgraph node in a group shaped as the first group that went inside whole
        first = min(moved, key=lambda g: _group_box(g)[0])
        held = members[id(first)]
        gx0, gy0, gx1, gy1 = _group_box(first)
        bx0, by0, bx1, by1 = _union(map(_box, held))
        pos = [bx0, by0 + TITLE_BAR]
        left, right_edge = gx0, pos[0] + size[0] + (gx1 - bx1)
        box = [gx0, gy0, right_edge - gx0, pos[1] + size[1] + (gy1 - by1) - gy0]
        own_group = dict(copy.deepcopy(dict(first)), title=_renumbered_title(first.get("title"), name), bounding=box)
        top_groups.append(own_group)
    else:
        pos = [region[0], region[1] + TITLE_BAR]
        left, right_edge = region[0], pos[0] + size[0]
    # everything that began right of the selection's start moves left up to the subgraph node
    after = [n for n in rest if _box(n)[0] >= left - 1e-6]
    after_groups = [g for g in top_groups if _group_box(g)[0] >= left - 1e-6 and not (moved and g is own_group)]
    starts = [_box(n)[0] for n in after] + [_group_box(g)[0] for g in after_groups]
    shift = min(starts) - (right_edge + GAP) if starts else 0.0
    if shift > 0:
        for n in after:
            n["pos"] = [float(n["pos"][0]) - shift, float(n["pos"][1])]
        for g in after_groups:
            b = list(g["bounding"])
            g["bounding"] = [b[0] - shift, *b[1:]]
    _renumber(top_groups)

    instance = {"id": instance_id, "type": sg_id, "pos": [float(pos[0]), float(pos[1])], "size": size, "flags": {},
                "order": min(int(n.get("order") or 0) for n in inner_nodes), "mode": 0,
                "inputs": inst_inputs, "outputs": inst_outputs,
                "properties": {"proxyWidgets": [["-1", n] for n in natives] + proxies},
                "widgets_values": native_values}
    canvas["nodes"] = [n for i, n in nodes.items() if i not in chosen]
    at = min(order[i] for i in inside)
    canvas["nodes"].insert(min(at, len(canvas["nodes"])), instance)
    canvas["links"] = outer_links
    canvas["groups"] = top_groups
    canvas["last_node_id"] = note_id or instance_id
    canvas["last_link_id"] = last_link

    inner_all = copy.deepcopy(inner_nodes)
    if moved:   # inside, the nodes taken from a group that stays outside move up level with the groups taken whole
        top = min(_group_box(g)[1] for g in moved)
        for group, ids in split:
            dy = top - _group_box(group)[1]
            shifted = [dict(n, pos=[n["pos"][0], float(n["pos"][1]) + dy]) if str(n["id"]) in ids else n for n in inner_all]
            box = _group_box(group)
            box = (box[0], box[1] + dy, box[2], box[3] + dy)
            others = [n for n in shifted if str(n["id"]) not in ids]
            if dy < 0 and not any(_overlap(box, _box(n)) for n in others) and \
                    not any(_overlap(box, _group_box(g)) for g in inner_groups if g is not group):
                inner_all = shifted
                b = list(group["bounding"])
                group["bounding"] = [b[0], b[1] + dy, *b[2:]]
    region = _union(map(_box, inner_all))
    io_height = {"in": 40 + SLOT_HEIGHT * max(len(sg_inputs), 1), "out": 40 + SLOT_HEIGHT * max(len(sg_outputs), 1)}
    cy = (region[1] + region[3]) / 2
    input_x = region[0] - IO_NODE_GAP - IO_NODE_WIDTH
    if description:
        height = _note_height(description)
        inner_all.append({"id": note_id, "type": "MarkdownNote", "pos": [input_x - 40 - NOTE_WIDTH, region[1] + TITLE_BAR],
                          "size": [NOTE_WIDTH, height], "flags": {}, "order": len(inner_all), "mode": 0, "inputs": [],
                          "outputs": [], "properties": {}, "widgets_values": [description],
                          "title": "What this subgraph does"})
    definition = {
        "id": sg_id, "version": 1,
        "state": {"lastGroupId": max([len(inner_groups)] + [int(g.get("id") or 0) for g in inner_groups]), "lastNodeId": canvas["last_node_id"], "lastLinkId": last_link,
                  "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": name,
        "inputNode": {"id": SUBGRAPH_INPUT_ID, "bounding": [input_x, cy - io_height["in"] / 2, IO_NODE_WIDTH, io_height["in"]]},
        "outputNode": {"id": SUBGRAPH_OUTPUT_ID,
                       "bounding": [region[2] + IO_NODE_GAP, cy - io_height["out"] / 2, IO_NODE_WIDTH, io_height["out"]]},
        "inputs": sg_inputs, "outputs": sg_outputs, "widgets": [],
        "nodes": inner_all, "groups": inner_groups, "links": inner_links, "extra": {},
    }
    definitions = dict(canvas.get("definitions") or {})
    definitions["subgraphs"] = [s for s in definitions.get("subgraphs") or [] if s.get("id") != sg_id] + [definition]
    out = {}
    for key, value in canvas.items():   # "definitions" before "config", as the frontend saves it
        if key == "config" and "definitions" not in out:
            out["definitions"] = definitions
        out[key] = value
    out["definitions"] = definitions
    return out


_NUMBERED = re.compile(r"^(\d+)\.\s+")


def _renumbered_title(title: Any, name: str) -> str:
    """The subgraph node's group: titled with its name, numbered as the group it replaces was ("2. ...")."""
    match = _NUMBERED.match(str(title or ""))
    return f"{match.group(1)}. {name}" if match else name


def _renumber(groups: list[dict[str, Any]]) -> None:
    """Groups titled "N. ..." numbered again 1, 2, ... from left to right (a stage gone inside leaves no gap)."""
    numbered = sorted((g for g in groups if _NUMBERED.match(str(g.get("title") or ""))), key=lambda g: _group_box(g)[0])
    for i, g in enumerate(numbered, 1):
        g["title"] = _NUMBERED.sub(f"{i}. ", str(g["title"]), count=1)


def edit_nodes(canvas: Mapping[str, Any], keep: Iterable[str] = FRONT_AND_RESULT) -> list[Any]:
    """The ids of a canvas's edit: every node but those of the types ``keep`` (notes, loaders, the
    image's scaling, the prompts, drawn masks, Save and Preview Image: ``FRONT_AND_RESULT``) and but
    those that take only from and give only to those (a Mask To Image between a mask and a preview)."""
    keep = set(keep)
    nodes = {str(n.get("id")): n for n in canvas.get("nodes") or []}
    links = [link if isinstance(link, (list, tuple)) else [link["id"], link["origin_id"], link["origin_slot"],
                                                           link["target_id"], link["target_slot"], link.get("type")]
             for link in canvas.get("links") or [] if link is not None]
    inside = {i for i, n in nodes.items() if str(n.get("type")) not in keep}
    changed = True
    while changed:
        changed = False
        for i in sorted(inside):
            neighbours = {str(link[1]) for link in links if str(link[3]) == i} | \
                         {str(link[3]) for link in links if str(link[1]) == i}
            if not neighbours & inside:
                inside.discard(i)
                changed = True
    return [n.get("id") for n in canvas.get("nodes") or [] if str(n.get("id")) in inside]


def spec_ids(spec: Mapping[str, Any], canvas: Mapping[str, Any]) -> dict[str, Any]:
    """{spec key: canvas id} for a canvas :func:`build_canvas` wrote from ``spec`` (its nodes in spec order)."""
    raw = spec.get("nodes") or []
    if isinstance(raw, Mapping):
        raw = [{"key": k, **v} for k, v in raw.items()]
    built = canvas.get("nodes") or []
    if len(raw) != len(built):
        raise CanvasError(f"the canvas has {len(built)} nodes, its spec {len(raw)}")
    out = {}
    for node, entry in zip(raw, built):
        if node.get("type") != entry.get("type"):
            raise CanvasError(f"spec node {node.get('key')!r} ({node.get('type')}) is canvas node "
                              f"{entry.get('id')} ({entry.get('type')}): not built in spec order")
        out[str(node.get("key", node.get("id", node.get("type"))))] = entry.get("id")
    return out


def apply_subgraph(spec: Mapping[str, Any], canvas: Mapping[str, Any],
                   node_info: NodeInfo | Callable[[str], Mapping[str, Any] | None] | None = None) -> dict[str, Any]:
    """The canvas :func:`build_canvas` wrote from ``spec``, with the spec's ``subgraph`` made one
    subgraph node (:func:`wrap`); the canvas itself where the spec has none. ``subgraph``:
    ``{"name", "description", "nodes": [keys] (default: the edit, :func:`edit_nodes`), "promote":
    [(key, widget name), ...], "labels": {input or output name: label}}``."""
    sub = spec.get("subgraph")
    if not sub:
        return dict(canvas)
    keys = spec_ids(spec, canvas)
    chosen = [keys[k] if k in keys else k for k in sub["nodes"]] if sub.get("nodes") else edit_nodes(canvas)
    promote = [(keys.get(k, k), w) for k, w in sub.get("promote") or ()]
    return wrap(canvas, chosen, sub["name"], sub.get("description", ""), promote=promote, labels=sub.get("labels"),
                node_info=node_info)
