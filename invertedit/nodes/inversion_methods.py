"""Inversions that survive classifier-free guidance, as refinements of a DDIM INVERSION.

- Negative-Prompt Inversion (Miyake et al., "Negative-prompt Inversion: Fast Image Inversion
  for Editing with Text-guided Diffusion Models"): the source prompt's embedding stands in
  for the null text, so the guided prediction equals the conditional one the inversion
  followed. No optimisation; no extra UNet call.
- Direct Inversion (Ju et al., "PnP Inversion"): the source branch is put back on the
  inversion trajectory at every step; exact reconstruction by construction, the target
  branch untouched. No extra UNet call.

Both are applied during sampling by Apply Inversion.
"""
from __future__ import annotations

import dataclasses

from ..hostkit.schemas import io
from ..hostkit.errors import NodeInputError, check_inversion
from ..inversion.methods import DIRECT, METHODS, NEGATIVE_PROMPT, Method
from ..hostkit.fingerprint import conditioning_fingerprint
from ..hostkit.sockets import Inversion as InversionSocket


def require_base(method: Method, inversion, model=None) -> None:
    """Refuse an input that is not an inversion, not the kind ``method`` refines (its ``built_on``),
    or (given ``model``) made with another model."""
    check_inversion(method.made_by, inversion, model=model, methods=(METHODS[method.built_on],))


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


class DirectInversion(io.ComfyNode):
    NAME = DIRECT.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDirectInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Keeps the source branch exactly on the inversion trajectory at every step (Ju et al., "
                         "'PnP Inversion'): the source is reconstructed exactly at any cfg, the target branch is left "
                         "to the prompt. Apply it with Apply Inversion and sample with ddim or euler. In a "
                         "source/target batch the first rows (as many as the inversion has) are the source."),
            inputs=[InversionSocket.Input("inversion", tooltip="A DDIM inversion (DDIM Invert, cfg 1).")],
            outputs=[InversionSocket.Output(display_name="INVERSION")],
        )

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        require_base(DIRECT, inversion)
        return io.NodeOutput(dataclasses.replace(inversion, method=DIRECT.name))


NODES = [NegativePromptInversion, DirectInversion]
