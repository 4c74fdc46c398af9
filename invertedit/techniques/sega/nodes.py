"""SEGA Concept / SEGA Guidance: semantic guidance as a GUIDER for SamplerCustomAdvanced
(math in ``guidance.py``).

The guider evaluates the prompt, the negative and every concept in one batched UNet call per
step (the host's ``calc_cond_batch``), runs the model's pre-CFG functions on them, combines
them as SEGA does, then applies the model's post-CFG functions with ``cond_scale`` (so Apply
Inversion's corrections and Latent Blend still act), as the host's own guiders do
(``hostkit/guidance_driver.py`` runs the policy of ``guidance.py``). The edit momentum is
the sampling run's own state.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_conditioning, check_finite
from ...hostkit.guidance_driver import GuidanceDriver
from ...hostkit.schemas import check_concept_weights, concept_inputs, make_concept
from ...hostkit.sockets import Concepts
from . import ROW
from .guidance import SegaPolicy


class SegaConcept(io.ComfyNode):
    NAME = "SEGA Concept"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditSEGAConcept",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description="One concept for SEGA Guidance; chain several through 'concepts'.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="The concept's prompt (CLIP Text Encode), e.g. 'glasses'."),
                *concept_inputs(scale=ROW.settings["InvertEditSEGAConcept.scale"],
                                warmup=ROW.settings["InvertEditSEGAConcept.warmup"],
                                threshold=ROW.settings["InvertEditSEGAConcept.threshold"], paper="paper"),
            ],
            outputs=[Concepts.Output(display_name="concepts")],
        )

    @classmethod
    def execute(cls, conditioning, direction, scale, warmup, cooldown, threshold, weight, concepts=None) -> io.NodeOutput:
        concept = make_concept(direction, scale, warmup, cooldown, threshold, weight, node=SegaConcept.NAME)
        return io.NodeOutput(list(concepts or []) + [(conditioning, concept)])


class SegaGuidance(io.ComfyNode):
    NAME = "SEGA Guidance"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditSEGAGuidance",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=("Semantic guidance (Brack et al.): classifier-free guidance plus, per concept, a thresholded "
                         "guidance term towards (or away from) it, with momentum. A GUIDER for SamplerCustomAdvanced; "
                         "the prompt, the negative and all concepts are evaluated in one batched UNet call per step. "
                         "Works on an inverted image through Apply Inversion's model and the inversion's sampler."),
            inputs=[
                io.Model.Input("model", tooltip="The model (patches, Apply Inversion, Latent Blend act as usual)."),
                io.Conditioning.Input("positive", tooltip="The prompt."),
                io.Conditioning.Input("negative", tooltip="The negative (unconditional) prompt."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Guidance scale."),
                Concepts.Input("concepts", tooltip="From SEGA Concept nodes."),
                io.Float.Input("momentum_scale", default=ROW.settings["InvertEditSEGAGuidance.momentum_scale"], min=0.0, max=10.0, step=0.01,
                               tooltip="Scale of the edit momentum (paper: 0.1)."),
                io.Float.Input("momentum_beta", default=ROW.settings["InvertEditSEGAGuidance.momentum_beta"], min=0.0, max=0.999, step=0.01,
                               tooltip="Momentum decay beta (paper: 0.4)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, cfg, concepts, momentum_scale, momentum_beta) -> io.NodeOutput:
        if not concepts:
            raise NodeInputError(SegaGuidance.NAME, "input 'concepts' is empty; connect SEGA Concept nodes.")
        check_finite(SegaGuidance.NAME, cfg=cfg, momentum_scale=momentum_scale, momentum_beta=momentum_beta)
        items = [c for _, c in concepts]
        check_concept_weights(SegaGuidance.NAME, items, divides=True)
        for name, conditioning in (("positive", positive), ("negative", negative),
                                   *(("concepts", cond) for cond, _ in concepts)):
            check_conditioning(SegaGuidance.NAME, name, conditioning, model)
        policy = SegaPolicy(cfg, items, momentum_scale, momentum_beta)
        return io.NodeOutput(GuidanceDriver(model, policy, {"positive": positive, "negative": negative},
                                            [cond for cond, _ in concepts]))


NODES = [SegaConcept, SegaGuidance]
