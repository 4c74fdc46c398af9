"""A required linked input that arrives empty (None) is refused by name, for every node of the pack.

The host passes None down a link where the node before gave nothing in that output: Load Checkpoint
on a file without a text encoder or a VAE (a Flux or SD3 diffusion-model-only file), or an optional
output left empty, such as DreamBooth's CLIP when its own clip input is not connected. The host's
CLIP Text Encode refuses such a CLIP by name; our nodes otherwise failed deep inside (``'NoneType'
object has no attribute 'tokenize'``). ``refuse_empty_links`` wraps a node class's ``execute`` once,
at registration, with that check on its required inputs that are links (widgets are never None)."""
from __future__ import annotations

import functools

from .errors import NodeInputError

#: The host's widget types: values typed on the node, never a link's None.
WIDGETS = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

_WRAPPED = "_invertedit_refuses_empty_links"

#: Where a None of these types comes from, for the message.
_CHECKPOINT = " (Load Checkpoint on a file without one, such as a diffusion-model-only Flux or SD3 file"
WHY = {"MODEL": _CHECKPOINT + ")",
       "VAE": _CHECKPOINT + ")",
       "CLIP": _CHECKPOINT + ", or DreamBooth's or DreamBooth Fine-Tune's CLIP when their own clip input is not "
                             "connected)"}


def refuse_empty_links(node_class: type) -> type:
    """``node_class`` (a V3 ``io.ComfyNode``), its ``execute`` refusing a None on a required link."""
    if getattr(node_class, _WRAPPED, False):
        return node_class
    schema = node_class.define_schema()
    links = [(i.id, i.get_io_type()) for i in schema.inputs
             if not i.optional and str(i.get_io_type()) not in WIDGETS and not isinstance(i.get_io_type(), list)]
    execute = node_class.execute.__func__

    @functools.wraps(execute)
    def checked(cls, *args, **kwargs):
        for name, kind in links:
            if name in kwargs and kwargs[name] is None:
                raise NodeInputError(schema.display_name, f"input '{name}' is empty: the node linked to it gave no "
                                                          f"{kind} there{WHY.get(str(kind), '')}; connect an output that "
                                                          f"holds one.")
        return execute(cls, *args, **kwargs)

    node_class.execute = classmethod(checked)
    setattr(node_class, _WRAPPED, True)
    return node_class
