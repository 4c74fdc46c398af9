"""LEDITS++ Concept / LEDITS++ Guidance: edit an edit-friendly DDPM inversion with concepts
confined by implicit masks (math in ``guidance.py``).

The guider evaluates the unconditional prompt and every concept in one batched UNet call per
step. For the attention masks, the UNet's cross-attention layers at a quarter of the latent's
resolution (the reference's choice; a model without attention there uses its coarsest
attention level) record, in the concept rows only, the maps of the concept's own tokens; the
maps live for one step and exist only as ``[B, h, w]`` sums.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_choice, check_conditioning, check_region_mask
from ...hostkit.guidance_driver import GuidanceDriver
from ...hostkit.layout import attention_levels, map_blocks, mask_factor
from ...hostkit.patches import replace_attention
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import check_concept_weights, concept_inputs, make_concept
from ...hostkit.sockets import Concepts
from ...hostkit.tokens import prompt_tokens
from . import ROW
from .glue import RecordConceptMaps
from .guidance import MASKS, LeditsPolicy


class LeditsConcept(io.ComfyNode):
    NAME = "LEDITS++ Concept"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditLEDITSConcept",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=("One concept for LEDITS++ Guidance, as text: its tokens' cross-attention maps make the "
                         "concept's mask. Chain several through 'concepts'."),
            inputs=[
                io.Clip.Input("clip", tooltip="The text encoder (the concept's tokens are found with its tokenizer)."),
                io.String.Input("text", default="a yellow background",
                                tooltip="The concept, e.g. 'glasses' or 'a yellow background'."),
                *concept_inputs(scale=ROW.settings["InvertEditLEDITSConcept.scale"], warmup=0,
                                threshold=ROW.settings["InvertEditLEDITSConcept.threshold"], paper="LEDITS++"),
            ],
            outputs=[Concepts.Output(display_name="concepts")],
        )

    @classmethod
    def execute(cls, clip, text, direction, scale, warmup, cooldown, threshold, weight, concepts=None) -> io.NodeOutput:
        ids, _ = prompt_tokens(clip, text, LeditsConcept.NAME)
        if len(ids) <= 2:
            raise NodeInputError(LeditsConcept.NAME, "input 'text' is empty; write the concept, e.g. 'glasses'.")
        conditioning = clip.encode_from_tokens_scheduled(clip.tokenize(text))
        concept = make_concept(direction, scale, warmup, cooldown, threshold, weight, tokens=tuple(range(1, len(ids) - 1)),
                               node=LeditsConcept.NAME)
        return io.NodeOutput(list(concepts or []) + [(conditioning, concept)])


class LeditsGuidance(io.ComfyNode):
    NAME = "LEDITS++ Guidance"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditLEDITSGuidance",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=("LEDITS++ (Brack et al.): semantic guidance with implicit masks on an edit-friendly DDPM "
                         "inversion. Each concept's guidance acts only where its own cross-attention maps and its "
                         "noise estimate both point (the intersection), so the rest of the image stays. A GUIDER for "
                         "SamplerCustomAdvanced with the Edit-Friendly DDPM Sampler, DisableNoise and the inversion's "
                         "SIGMAS and LATENT. The unconditional prompt and all concepts run in one batched UNet call "
                         "per step."),
            inputs=[
                io.Model.Input("model", tooltip="The model the image was inverted with (Apply Inversion's guard fits)."),
                io.Conditioning.Input("negative", tooltip="The unconditional prompt (usually empty)."),
                Concepts.Input("concepts", tooltip="From LEDITS++ Concept nodes (SEGA Concepts work with mask 'noise')."),
                io.Combo.Input("mask", options=list(MASKS), default="intersect",
                               tooltip="intersect: cross-attention mask x noise mask (paper's default; attention only "
                                       "above timestep 800). attention: the cross-attention mask alone. noise: the "
                                       "noise mask alone."),
                io.Mask.Input("user_mask", optional=True,
                              tooltip="Optional: confine every concept's guidance to this MASK as well (any size)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, negative, concepts, mask, user_mask=None) -> io.NodeOutput:
        check_model_family(model, LeditsGuidance.NAME)
        check_choice(LeditsGuidance.NAME, "mask", mask, MASKS)
        if not concepts:
            raise NodeInputError(LeditsGuidance.NAME, "input 'concepts' is empty; connect LEDITS++ Concept nodes.")
        items = [c for _, c in concepts]
        check_concept_weights(LeditsGuidance.NAME, items, divides=False)
        for name, conditioning in (("negative", negative), *(("concepts", cond) for cond, _ in concepts)):
            check_conditioning(LeditsGuidance.NAME, name, conditioning, model)
        if mask != "noise":
            untokened = [i for i, c in enumerate(items) if c.tokens is None]
            if untokened:
                raise NodeInputError(LeditsGuidance.NAME, f"concept {untokened[0] + 1} comes from a SEGA Concept node and has no "
                                               f"tokens for the attention mask; use LEDITS++ Concept nodes, or mask 'noise'.")
        if user_mask is not None:
            check_region_mask(LeditsGuidance.NAME, "user_mask", user_mask, "every concept's guidance would be confined "
                                                                          "to nothing and the image come out unedited")
        policy = LeditsPolicy(items, mask, user_mask)
        m = model
        if mask != "noise":
            levels = attention_levels(model)
            existing = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
            taken = [key for key in existing if key[:2] in levels]
            if taken:
                raise NodeInputError(LeditsGuidance.NAME, f"the input MODEL already has attention replace patches (attn2 of block "
                                               f"{taken[0]}), from another node; they would be dropped. Use mask "
                                               f"'noise', or apply that node's patch after sampling.")
            factor = mask_factor(levels)
            patch = RecordConceptMaps(policy, {i + 1: list(c.tokens) for i, c in enumerate(items)}, factor)
            m = model.clone()
            for block, number in sorted(map_blocks(model)):
                replace_attention(m, patch, "attn2", block, number)
        return io.NodeOutput(GuidanceDriver(m, policy, {"negative": negative}, [cond for cond, _ in concepts]))


NODES = [LeditsConcept, LeditsGuidance]
