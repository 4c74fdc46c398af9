"""Negative-Prompt Inversion (Miyake et al., "Negative-prompt Inversion: Fast Image Inversion for
Editing with Text-guided Diffusion Models"), a refinement of a DDIM INVERSION that survives
classifier-free guidance: the source prompt's embedding stands in for the null text, so the guided
prediction equals the conditional one the inversion followed. No optimisation; no extra UNet call.
Applied during sampling by Apply Inversion.
"""
from __future__ import annotations

import dataclasses

from ...hostkit.errors import NodeInputError, require_base
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import NEGATIVE_PROMPT


class NegativePromptInversion(io.ComfyNode):
    NAME = NEGATIVE_PROMPT.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditNegativePromptInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Uses the source prompt as the negative (null-text) conditioning while sampling, so the "
                         "reconstruction survives classifier-free guidance without any optimisation (Miyake et al.). "
                         "Apply it with Apply Inversion; the sampler's own negative input is then replaced."),
            inputs=[
                InversionSocket.Input("inversion", tooltip="A DDIM inversion (DDIM Invert, cfg 1)."),
                io.Conditioning.Input("positive", tooltip="The source prompt the inversion was made with "
                                                          "(paper: the source embedding is the null text at every step)."),
            ],
            outputs=[InversionSocket.Output(display_name="INVERSION")],
        )

    @classmethod
    def execute(cls, inversion, positive) -> io.NodeOutput:
        require_base(NEGATIVE_PROMPT, inversion)
        if conditioning_fingerprint(positive) != inversion.fingerprint.get("positive"):
            raise NodeInputError(cls.NAME, "input 'positive' is not the source prompt the inversion was made with; "
                                           "connect the same CONDITIONING that DDIM Invert got.")
        emb, extra = positive[0]
        clues = dict(inversion.clues, **{"source.cond": emb.detach().cpu()})
        if extra.get("pooled_output") is not None:
            clues["source.pooled"] = extra["pooled_output"].detach().cpu()
        return io.NodeOutput(dataclasses.replace(inversion, method=NEGATIVE_PROMPT.name, clues=clues))


NODES = [NegativePromptInversion]
