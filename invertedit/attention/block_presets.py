"""Published block allocations of the DiT editors, for every editor that takes block lists (a technique never imports
another's: LayerVerse's node reads them as its presets, Stable Flow's as a choice of its vital blocks).

LayerVerse (Zhirnov et al., ECCV'26, ``v-gen-ai/LayerVerse``, their ``configs/selected_combinations_config.yaml``):
the blocks calibrated per backbone for KV-injection, in two roles: *masked* (the source's keys and values outside
the editing mask) and *global* (everywhere). Block numbers are 0-based and per stream, as the host names them:
``"double_block"`` (Flux's double-stream, SD3's joint blocks) and ``"single_block"``. Plain data.
"""
from __future__ import annotations

#: name -> {role: {block kind: block numbers}}; the depth each was calibrated on is LAYERVERSE_DEPTHS'
LAYERVERSE = {
    "LayerVerse (Flux.1 dev)": {"masked": {"double_block": (1,), "single_block": tuple(range(32, 38))},
                                "global": {"double_block": (2,), "single_block": ()}},
    "LayerVerse (SD3.5 medium)": {"masked": {"double_block": (0, 1, 3, 4, 12, 14, 17, 18, 19), "single_block": ()},
                                  "global": {"double_block": (20, 21, 22, 23), "single_block": ()}},
}
#: (double or joint blocks, single blocks) of the model each allocation was calibrated on
LAYERVERSE_DEPTHS = {"LayerVerse (Flux.1 dev)": (19, 38), "LayerVerse (SD3.5 medium)": (24, 0)}


def active_blocks(name: str, kind: str) -> tuple[int, ...]:
    """Every block of ``kind`` an allocation injects in, either role, in order."""
    roles = LAYERVERSE[name]
    return tuple(sorted(set(roles["masked"][kind]) | set(roles["global"][kind])))
