"""ConsistEdit (Yin et al. 2025) on an SD3 or Flux.1 model's joint attention, after a flow inversion. Policies in
``control.py``, host glue in ``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import NodeInputError, check_finite, check_inversion, check_threshold
from ...hostkit.flow_inverters import InvertedNoise
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import FLOW_METHODS
from . import ROW
from .glue import MASK_BLOCKS, consist_edit

PAPER = ROW.settings_of("InvertEditConsistEdit")


class ConsistEdit(io.ComfyNode):
    NAME = "ConsistEdit"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditConsistEdit",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "ConsistEdit (Yin et al., SIGGRAPH Asia 2025) on an SD3 or Flux.1 model: the source and the edit "
                "sample as one pair, the source row following the image's flow inversion; in SD3's joint blocks "
                "(Flux: its single-stream blocks) the edit's image tokens take the source's queries and keys in the "
                "first steps (consistency_strength) and, outside the edited object's region, its queries, keys and "
                "values at every step; the text keeps its own. The region: the source's attention on edit_words, "
                "averaged over the inversion's steps (one extra evaluation per step, made when the node runs), or "
                "a mask you connect. Sample with SamplerCustomAdvanced: CFGGuider (SD3, cfg 1 as the authors' "
                "real-image script) or BasicGuider (Flux) with this node's MODEL and CONDITIONING, its NOISE, the "
                "inversion's SIGMAS, euler, and the image's latent repeated twice (Repeat Latent Batch); row 1 of "
                "the output is the edit."),
            inputs=[
                io.Model.Input("model", tooltip="The SD3 or Flux.1 model the image was inverted with."),
                io.Clip.Input("clip", tooltip="Its text encoders: the node encodes both prompts and finds edit_words."),
                InversionSocket.Input("inversion",
                                      tooltip="Flow Invert's inversion of the image with the source prompt (the "
                                              "authors' real-image script: Uni-Inv, 28 steps, guidance 1)."),
                io.String.Input("source_prompt", default="a red circle on a blue background",
                                tooltip="The prompt the image was inverted with."),
                io.String.Input("target_prompt", default="a red square on a blue background",
                                tooltip="The edited prompt (the same token count as the source's)."),
                io.String.Input("edit_words", default="circle",
                                tooltip="The edited object's word(s) in the source prompt, comma-separated (the "
                                        "authors' edit_object); the mask is the source's attention on them. Ignored "
                                        "when a mask is connected."),
                io.Float.Input("consistency_strength", default=PAPER["consistency_strength"], min=0.0, max=1.0,
                               step=0.05,
                               tooltip="The fraction of the steps in which the edit takes ALL the source's image "
                                       "queries and keys (its structure), edit region included: the first int(f * N). "
                                       "Authors: 0.1 for real images, 1.0 in their synthesis scripts. Lower: more "
                                       "edit (the object may change shape); higher: more keeping (the object keeps "
                                       "the source's shape, only colour and texture change). Toy flow world (4 "
                                       "cases): background PSNR 20.1 dB at 0, 20.9 at 0.1, 23.8 at 0.5, 24.3 at 1."),
                io.Float.Input("mask_threshold", default=PAPER["mask_threshold"], min=0.0, max=1.0, step=0.01,
                               tooltip="The edit region: where the normalised attention map of edit_words is above "
                                       "this (authors: 0.1). Lower: a larger region, more edit; higher: a smaller "
                                       "region, more of the image kept as it is (toy flow world, 4 cases: background "
                                       "PSNR against the reconstruction 20.5 dB at 0.03, 24.0 at 0.1, 26.8 at 0.3)."),
                io.Float.Input("guidance", default=3.5, min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance of the edit row (the host's default 3.5; the "
                                       "authors' Flux synthesis script: 7.5); the source row keeps the inversion's. "
                                       "Higher: a stronger edit. Ignored by SD3 (use the guider's cfg) and schnell."),
                io.Combo.Input("mask_blocks", options=list(MASK_BLOCKS), default="authors", optional=True,
                               tooltip="The blocks whose attention on edit_words makes the mask. authors: the blocks "
                                       "the control acts on (SD3: every joint block; Flux: its single-stream blocks, "
                                       "as the authors' code reads them); all: every block; double: Flux's "
                                       "double-stream blocks (SD3: its joint blocks). On the toy flow model (6 "
                                       "blocks) the single blocks' maps sit on the image's border and the double "
                                       "blocks' on the object: try all or double where the edit_region output misses "
                                       "the object."),
                io.Boolean.Input("use_mask", default=True, optional=True,
                                 tooltip="On: the consistent edit (the authors' default). Off: their --no_mask "
                                         "editor for global edits (style): no region is kept, only the first steps' "
                                         "queries and keys are the source's (their script: consistency_strength "
                                         "0.3). Off edits more: nothing outside the object is held."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The region to edit (white), in place of the attention mask: e.g. Attention "
                                      "Store's or a painted one."),
            ],
            outputs=[io.Model.Output(tooltip="The model to sample the pair with."),
                     io.Conditioning.Output(tooltip="The pair: row 0 the source, row 1 the edit."),
                     io.Noise.Output(tooltip="The inverted noise for both rows: SamplerCustomAdvanced's noise."),
                     io.Mask.Output(display_name="edit_region",
                                    tooltip="The edit region on the model's patch grid (white: edited).")],
        )

    @classmethod
    def execute(cls, model, clip, inversion, source_prompt, target_prompt, edit_words, consistency_strength,
                mask_threshold, guidance, mask_blocks="authors", use_mask=True, mask=None) -> io.NodeOutput:
        check_finite(cls.NAME, consistency_strength=consistency_strength, mask_threshold=mask_threshold,
                     guidance=guidance)
        if not 0.0 <= consistency_strength <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'consistency_strength' is {consistency_strength:g}; give a fraction "
                                           f"of the steps from 0 to 1 (authors: 0.1 for real images, 1 when "
                                           f"generating).")
        if mask is None and use_mask:
            check_threshold(cls.NAME, "mask_threshold", mask_threshold, "the attention map is normalised to 0..1",
                            "the edit region would be empty (the edit would copy the source)",
                            "the edit region would be the whole image", PAPER["mask_threshold"])
        check_inversion(cls.NAME, inversion, model=model, methods=FLOW_METHODS)
        patched, pair, region = consist_edit(cls.NAME, model, clip, inversion, source_prompt, target_prompt,
                                             edit_words, consistency_strength, mask_threshold, guidance, mask,
                                             mask_blocks, use_mask)
        return io.NodeOutput(patched, pair, InvertedNoise(inversion, cls.NAME, rows=2), region)


NODES = [ConsistEdit]
