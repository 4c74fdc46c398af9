"""ComfyUI nodes of the pack: each file a schema and an execute (the host glue they use is in
``hostkit/``, the math in the pure layers). Each module lists its node classes in ``NODES``; the
extension below registers every module of this package, in the technique table's order
(``invertedit/techniques.py``), so a new node file needs no entry here.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..hostkit.bundled_inputs import supply_to_host
from ..hostkit.empty_links import refuse_empty_links
from ..hostkit.schemas import ComfyExtension, io
from ..techniques import TECHNIQUES

_MODULES = tuple(importlib.import_module(f".{info.name}", __name__) for info in pkgutil.iter_modules(__path__))
_ORDER = {node: i for i, node in enumerate(n for t in TECHNIQUES for n in t.nodes)}


def node_classes() -> list[type[io.ComfyNode]]:
    """Every node class of the pack, in the technique table's order (the node menu's)."""
    nodes = [refuse_empty_links(node) for module in _MODULES for node in module.NODES]
    return sorted(nodes, key=lambda node: _ORDER.get(node.define_schema().node_id, len(_ORDER)))


class InvertEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return node_classes()


async def comfy_entrypoint() -> InvertEditExtension:
    supply_to_host()   # the example workflows' sample image and inversion, where the server looks
    return InvertEditExtension()
