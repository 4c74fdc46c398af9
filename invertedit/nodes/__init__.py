"""ComfyUI nodes of the pack: the only layer that imports comfy.

Each module lists its node classes in ``NODES``; the extension below registers them all.
"""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import (apply_inversion, attention_inject, attention_store, ddim_invert, ddpm_invert, demo_model, diffedit_mask,
               edict, inversion_files, inversion_methods, latent_blend, ledits, mutual_attention, null_text,
               plug_and_play, sega, toy_model)

# In the order the node menu lists them: models, inversion, attention, guidance.


_MODULES = (toy_model, demo_model, ddim_invert, inversion_methods, null_text, edict, ddpm_invert, apply_inversion,
            inversion_files, attention_inject, attention_store, mutual_attention, plug_and_play, latent_blend,
            diffedit_mask, sega, ledits)


class InvertEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in _MODULES for node in module.NODES]


async def comfy_entrypoint() -> InvertEditExtension:
    return InvertEditExtension()
