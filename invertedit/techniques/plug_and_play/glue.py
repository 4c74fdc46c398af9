"""Plug-and-Play inside the host (math in ``injection.py``): the patched clone of the model that
samples the pair, the decoder's feature injection as an output-block patch and its self-attention
injection as an attention policy on the decoder's layers.

Feature injection goes through the host's ``output_block_patch``, which sees the decoder's
hidden state between output blocks: the target takes the source's output of the paper's
fourth decoder block (its ResBlock and attention) as it enters the next block. The paper
injects that ResBlock's output alone; ComfyUI offers no per-step hook inside a ResBlock.
"""
from __future__ import annotations

from functools import partial

from ...hostkit.attention_driver import install_policy
from ...hostkit.errors import NodeInputError, check_conditioning, check_finite
from ...hostkit.keys import PAIR_RUN_KEY
from ...hostkit.layout import decoder_blocks
from ...hostkit.pair import PairRun, encode_prompt, join_pair, pair_rows, prepare_pair_model, warn_same_prompts
from ...hostkit.patches import on_output_blocks, wrap_runs
from ...hostkit.sampling import check_model_family
from ...hostkit.steps import sampling_step
from .injection import PlugAndPlaySchedule, SelfAttentionInjection, decoder_injection_block, inject_features


class FeatureInjection:
    """output_block_patch: entering output block ``block``, the target rows take the source's features."""

    def __init__(self, schedule: PlugAndPlaySchedule, block: int, node: str):
        self.schedule, self.block, self.node = schedule, block, node

    def __call__(self, h, hsp, transformer_options):
        if transformer_options.get("block") != ("output", self.block):
            return h, hsp
        chunks, _ = pair_rows(h, transformer_options, self.node)
        step, steps = sampling_step(transformer_options)
        if self.schedule.injects_features(step, steps):
            h = inject_features(h, len(chunks))
        return h, hsp


def plug_and_play(node: str, model, clip, latent: dict, source_prompt: str, target_prompt: str, features: float,
                  self_attention: float, paper: dict):
    """A clone of ``model`` that samples the source/target pair with the source's decoder features
    and self-attention maps in the target, the pair's CONDITIONING and the LATENT pair. ``paper``:
    the paper's fractions, by input name, for the messages."""
    check_model_family(model, node)
    said = f"paper: {paper['feature_injection']:g} and {paper['self_attention_injection']:g}"
    for name, value in (("feature_injection", features), ("self_attention_injection", self_attention)):
        check_finite(node, **{name: value})
        if not 0.0 <= value <= 1.0:
            raise NodeInputError(node, f"input '{name}' is {value:g}; use a fraction between 0 and 1 "
                                       f"(paper: {paper[name]:g}).")
    if features == 0.0 and self_attention == 0.0:
        raise NodeInputError(node, f"inputs 'feature_injection' and 'self_attention_injection' are both 0, so "
                                   f"Plug-and-Play would never act; give fractions above 0 ({said}).")
    schedule = PlugAndPlaySchedule(features, self_attention)
    m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1",), node)
    per_level, count = decoder_blocks(model)
    start = decoder_injection_block(per_level)
    if start + 1 >= count:
        raise NodeInputError(node, f"this UNet's decoder has {count} blocks, too few for the paper's injection after "
                                   f"decoder block {start}.")
    decoder = [(block, number) for block, number in blocks if block == "output" and number >= start]
    install_policy(m, SelfAttentionInjection(schedule), decoder, node, ("attn1",))
    on_output_blocks(m, FeatureInjection(schedule, start + 1, node))
    warn_same_prompts(node, source_prompt, target_prompt)
    source = encode_prompt(clip, source_prompt)
    check_conditioning(node, "clip", source, model)
    wrap_runs(m, PAIR_RUN_KEY, PairRun(source, node, idle=partial(schedule.idle_reason, paper=said)))
    frames = pair_latent["samples"].shape[0] // 2   # a clip's pair in blocks (F = 1: one image)
    return m, join_pair(source, encode_prompt(clip, target_prompt), frames), pair_latent
