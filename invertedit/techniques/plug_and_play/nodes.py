"""Plug-and-Play (Tumanyan et al. 2023): the source's decoder features and self-attention maps
plugged into the target branch of a source/target pair (math in ``injection.py``, the patches in
``glue.py``; the paper's fractions are the row's)."""
from __future__ import annotations

from ...hostkit.schemas import io, pair_inputs, pair_outputs
from . import ROW
from .glue import plug_and_play

PAPER = ROW.settings_of("InvertEditPlugAndPlay")


class PlugAndPlay(io.ComfyNode):
    NAME = "Plug-and-Play"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditPlugAndPlay",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=("Plug-and-Play (Tumanyan et al.): the target branch takes the source's decoder features and "
                         "self-attention maps, so a new prompt restyles or retextures the image while its structure stays. "
                         "Invert with an empty prompt (paper). Outputs the patched MODEL, the source/target CONDITIONING "
                         "pair and the LATENT pair for one sampler run."),
            inputs=[
                *pair_inputs(source_default='', source_tooltip='The prompt the image was inverted with (paper: empty).',
                             target_default='a red square on a blue background',
                             target_tooltip='The translation prompt (any length: prompts of different token lengths '
                                            'are repeated to a common one, as the host batches them).'),
                io.Float.Input("feature_injection", default=PAPER["feature_injection"], min=0.0, max=1.0, step=0.05,
                               tooltip=f"Fraction of the steps with the decoder features injected (paper: "
                                       f"{PAPER['feature_injection']:g})."),
                io.Float.Input("self_attention_injection", default=PAPER["self_attention_injection"], min=0.0,
                               max=1.0, step=0.05,
                               tooltip=f"Fraction of the steps with the decoder self-attention maps injected (paper: "
                                       f"{PAPER['self_attention_injection']:g})."),
            ],
            outputs=pair_outputs('feature and self-attention patches'),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, feature_injection,
                self_attention_injection) -> io.NodeOutput:
        return io.NodeOutput(*plug_and_play(cls.NAME, model, clip, latent, source_prompt, target_prompt,
                                            feature_injection, self_attention_injection, PAPER))


NODES = [PlugAndPlay]
