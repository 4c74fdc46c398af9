"""LayerVerse KV Inject: LayerVerse's role-separated KV-injection (Zhirnov et al. 2026) as a patch on a Flux.1 or
SD3/SD3.5 model, from the keys and values Flow Invert kept (its keeper in ``glue.py``; policies in ``policy.py``)."""
from __future__ import annotations

from ...hostkit.errors import check_inversion
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import SOLVER_METHODS
from .allocation import PRESET_NAMES, PRESETS
from .glue import layerverse

#: the node's defaults: the authors' Flux.1 dev allocation (the lists are read with preset custom)
DEFAULT_PRESET = "LayerVerse (Flux.1 dev)"
DEFAULT_MASKED, DEFAULT_GLOBAL = PRESETS[DEFAULT_PRESET]


class LayerVerseKVInject(io.ComfyNode):
    NAME = "LayerVerse KV Inject"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditLayerVerse",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "LayerVerse (Zhirnov et al., ECCV'26): KV-injection in a calibrated set of blocks. The masked blocks "
                "attend with the source's image keys and values outside the editing mask (the background is kept), "
                "the few global blocks everywhere (the edited object's structure is kept); every other block is "
                "untouched and the text's keys and values are the edit's own. Invert with Flow Invert (the authors: "
                "fireflow) with layerverse_keep set to the allocation; sample as for Flow Invert: "
                "SamplerCustomAdvanced, its NOISE and SIGMAS, the Flow Sampler with the same solver, the target "
                "prompt (Flux: guidance 2; SD3.5: cfg 7.5)."),
            inputs=[
                io.Model.Input("model", tooltip="The Flux.1 or SD3/SD3.5 model the image was inverted with."),
                InversionSocket.Input("inversion",
                                      tooltip="Flow Invert's inversion, made with layerverse_keep on (the preset's "
                                              "blocks, or 'every block' for a custom allocation)."),
                io.Combo.Input("preset", options=list(PRESET_NAMES), default=DEFAULT_PRESET,
                               tooltip="The authors' calibrated allocations: 'LayerVerse (Flux.1 dev)' (masked double 1, "
                                       "single 32-37; global double 2) and 'LayerVerse (SD3.5 medium)' (masked 0, 1, 3, "
                                       "4, 12, 14, 17, 18, 19; global 20-23); custom: the two lists below. An allocation "
                                       "is calibrated for its model's depth: another depth is refused (use custom)."),
                io.String.Input("masked_blocks", default=DEFAULT_MASKED,
                                tooltip="custom only. Blocks that take the source's keys and values outside the mask: "
                                        "'double 1; single 32-37' (Flux, each stream from 0), '0, 1, 3-4' (SD3's joint "
                                        "blocks). More blocks keep more of the background; the masked region is the "
                                        "edit's either way (authors, Flux.1 dev: 'double 1; single 32-37')."),
                io.String.Input("global_blocks", default=DEFAULT_GLOBAL,
                                tooltip="custom only. Blocks that take the source's keys and values everywhere (a "
                                        "block in both lists is global). More keep more of the object's shape and "
                                        "pose, at the edit's expense; none frees the object (authors, Flux.1 dev: "
                                        "'double 2'; SD3.5 medium: '20-23')."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The editing region (painted, or Attention Store's mask of the word that "
                                      "changes): inside it the masked blocks keep the edit's own keys and values. A "
                                      "larger mask frees more of the image to change; without one the masked blocks "
                                      "inject everywhere (the authors' use_mask off: the most keeping). The authors "
                                      "make it from cross-attention of the changed words."),
                io.Int.Input("inject_steps", default=1000, min=1, max=1000, optional=True,
                             tooltip="Inject in the first N sampling steps (authors: every step, 15 of 15 on Flux). "
                                     "Fewer steps: more edit, less of the source kept."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, inversion, preset, masked_blocks, global_blocks, mask=None,
                inject_steps=1000) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion, model=model, methods=tuple(SOLVER_METHODS.values()))
        return io.NodeOutput(layerverse(cls.NAME, model, inversion, preset, masked_blocks, global_blocks, mask,
                                        inject_steps))


NODES = [LayerVerseKVInject]
