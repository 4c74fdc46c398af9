"""ComfyUI nodes of the pack: the only layer that imports comfy.

Each module lists its node classes in ``NODES``; the extension below registers them all.
"""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import demo_model, ddim_invert, apply_inversion, inversion_files, inversion_methods, null_text, edict, ddpm_invert, attention_inject, attention_store, mutual_attention, plug_and_play, latent_blend, diffedit_mask, sega, ledits, toy_model

_MODULES = (demo_model, ddim_invert, inversion_methods, null_text, edict, ddpm_invert, apply_inversion, inversion_files, attention_inject, attention_store, mutual_attention, plug_and_play, latent_blend, diffedit_mask, sega, ledits, toy_model)


class InvertEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in _MODULES for node in module.NODES]


async def comfy_entrypoint() -> InvertEditExtension:
    return InvertEditExtension()
