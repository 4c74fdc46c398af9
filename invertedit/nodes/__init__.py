"""ComfyUI nodes of the pack: each file a schema and an execute (the host glue they use is in
``hostkit/``, the math in the pure layers). Each module lists its node classes in ``NODES``;
the extension below registers them all.
"""
from __future__ import annotations

import importlib

from ..hostkit.schemas import ComfyExtension, io

from ..hostkit.bundled_inputs import supply_to_host

# The node modules, once, in the order the node menu lists them: models, inversion, attention, guidance.
_MODULES = tuple(importlib.import_module(f".{name}", __name__) for name in (
    "toy_model", "demo_model", "ddim_invert", "inversion_methods", "null_text", "edict", "ddpm_invert", "fixed_point",
    "apply_inversion", "inversion_files", "attention_inject", "attention_store", "mutual_attention", "plug_and_play",
    "latent_blend", "diffedit_mask", "sega", "ledits", "proximal", "noise_map", "imagic", "pix2pix_zero"))


class InvertEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in _MODULES for node in module.NODES]


async def comfy_entrypoint() -> InvertEditExtension:
    supply_to_host()   # the example workflows' sample image and inversion, where the server looks
    return InvertEditExtension()
