"""The pack's ComfyUI extension: every technique folder's ``nodes.py`` lists its node classes in
``NODES``; they are registered in the technique table's order (``invertedit/techniques/``), the
node menu's, so a new technique's nodes need no entry here."""
from __future__ import annotations

import logging
from importlib import import_module
from importlib.util import find_spec

from .hostkit.bundled_inputs import supply_to_host
from .hostkit.empty_links import refuse_empty_links
from .hostkit.host_surface import TESTED_HOST, missing
from .hostkit.schemas import ComfyExtension, io
from .techniques import FOLDERS

_PACKAGE = __name__.rsplit(".", 1)[0] + ".techniques"
# imported once, in the table's order (a technique's nodes module may register what others read, e.g. a keeper)
_MODULES = tuple(import_module(f"{_PACKAGE}.{folder}.nodes") for folder in FOLDERS
                 if find_spec(f"{_PACKAGE}.{folder}.nodes") is not None)


def node_classes() -> list[type[io.ComfyNode]]:
    """Every node class of the pack, in the technique table's order (the node menu's)."""
    return [refuse_empty_links(node) for module in _MODULES for node in module.NODES]


class InvertEditExtension(ComfyExtension):
    async def get_node_list(self, *args, **kwargs) -> list[type[io.ComfyNode]]:
        return node_classes()


async def comfy_entrypoint() -> InvertEditExtension:
    gaps = missing()
    if gaps:   # a newer or older host: say what is missing once, not as an AttributeError in the middle of a run
        logging.warning("ComfyUI-InvertEdit was tested on ComfyUI %s; this ComfyUI lacks what some of its nodes use "
                        "(those nodes will fail): %s", TESTED_HOST, "; ".join(gaps))
    supply_to_host()   # the example workflows' sample image and inversion, where the server looks
    return InvertEditExtension()
