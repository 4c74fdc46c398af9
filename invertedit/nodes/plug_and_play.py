"""Plug-and-Play: the source's decoder features and self-attention maps plugged into the target
branch of a source/target pair (math in ``attention/plug_and_play.py``).

Feature injection goes through the host's ``output_block_patch``, which sees the decoder's
hidden state between output blocks: the target takes the source's output of the paper's
fourth decoder block (its ResBlock and attention) as it enters the next block. The paper
injects that ResBlock's output alone; ComfyUI offers no per-step hook inside a ResBlock.
"""
from __future__ import annotations

from ..hostkit.schemas import io

from ..attention.plug_and_play import PlugAndPlaySchedule, SelfAttentionInjection, decoder_injection_block
from ..hostkit.attention_driver import install_policy
from ..hostkit.errors import NodeInputError, check_conditioning, check_finite
from ..hostkit.keys import PAIR_RUN_KEY
from ..hostkit.pair import encode_prompt, join_pair, prepare_pair_model, warn_same_prompts
from ..hostkit.sampling import check_model_family, wrap_runs
from ..hostkit.schemas import pair_inputs, pair_outputs
from ..hostkit.plug_and_play import FeatureInjection, PlugAndPlayRun


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
                io.Float.Input("feature_injection", default=0.8, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps with the decoder features injected (paper: 0.8)."),
                io.Float.Input("self_attention_injection", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps with the decoder self-attention maps injected (paper: 0.5)."),
            ],
            outputs=pair_outputs('feature and self-attention patches'),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, feature_injection,
                self_attention_injection) -> io.NodeOutput:
        check_model_family(model, PlugAndPlay.NAME)
        for name, value in (("feature_injection", feature_injection),
                            ("self_attention_injection", self_attention_injection)):
            check_finite(PlugAndPlay.NAME, **{name: value})
            if not 0.0 <= value <= 1.0:
                raise NodeInputError(PlugAndPlay.NAME, f"input '{name}' is {value:g}; use a fraction between 0 and 1 "
                                                       f"(paper: {PAPER[name]}).")
        if feature_injection == 0.0 and self_attention_injection == 0.0:
            raise NodeInputError(PlugAndPlay.NAME, "inputs 'feature_injection' and 'self_attention_injection' are both "
                                                   "0, so Plug-and-Play would never act; give fractions above 0 (paper: "
                                                   "0.8 and 0.5).")
        schedule = PlugAndPlaySchedule(feature_injection, self_attention_injection)
        m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1",), PlugAndPlay.NAME)
        unet = model.model.diffusion_model
        start = decoder_injection_block(unet.num_res_blocks[-1] + 1)   # output blocks per level
        if start + 1 >= len(unet.output_blocks):
            raise NodeInputError(PlugAndPlay.NAME, f"this UNet's decoder has {len(unet.output_blocks)} blocks, too few for the "
                                       f"paper's injection after decoder block {start}.")
        decoder = [(block, number) for block, number in blocks if block == "output" and number >= start]
        install_policy(m, SelfAttentionInjection(schedule), decoder, PlugAndPlay.NAME, ("attn1",))
        m.set_model_output_block_patch(FeatureInjection(schedule, start + 1))
        warn_same_prompts(PlugAndPlay.NAME, source_prompt, target_prompt)
        source = encode_prompt(clip, source_prompt)
        check_conditioning(PlugAndPlay.NAME, "clip", source, model)
        wrap_runs(m, PAIR_RUN_KEY, PlugAndPlayRun(schedule, source))
        return io.NodeOutput(m, join_pair(source, encode_prompt(clip, target_prompt)), pair_latent)


PAPER = {"feature_injection": 0.8, "self_attention_injection": 0.5}


NODES = [PlugAndPlay]
