"""Prompt-to-Prompt on a diffusion transformer's joint attention inside the host (policy in
``policy.py``): the two prompts' token alignment over the transformer's
text sequence (Flux's T5 tokens; SD3's CLIP window, then T5's; Qwen-Image's Qwen2.5-VL tokens, each
prompt its own length), the patched clone of the model that samples the source/target pair (the source
row following a flow inversion, as Stable Flow's does), and the local blend's step on the inversion's
trajectory.

Qwen-Image's text is not padded, and the host runs conds of different token counts in separate model
calls, where the policy, which pairs each source row with its target row in one attention call, would
find one of them. So the shorter prompt is padded to the longer's token count with zeros and the padding
masked out of every attention (``hostkit/dit_attention.py``'s ``PaddedPair``): the pair runs in one call,
each row computing what its prompt alone computes. A negative prompt of another length runs in a call
of its own, which the policy leaves to the host (Prompt-to-Prompt edits the conditional rows)."""
from __future__ import annotations

import logging

import torch

from ...attention.align import replacement_mapper, sequence_refine as joint_refine
from ...attention.blend_words import choose_blend_words, found_words
from ...attention.controllers import MODES, controller
from ...attention.local_blend import local_blend_of
from ...attention.prompt_to_prompt import (ReplaceSchedule, check_acts, check_blend, check_fractions, check_reweight,
                                           check_subtract, check_word_fractions)
from ...hostkit.blending import LocalBlendStep
from ...hostkit.dit_attention import dit_blocks, install_dit_policy, install_padded_pair, pad_pair
from ...hostkit.errors import NodeInputError, check_choice, check_conditioning
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.flow_pair import SourceRow
from ...hostkit.keys import PAIR_RUN_KEY
from ...hostkit.pair import encode_prompt, join_pair, replace_run, warn_same_prompts
from ...hostkit.patches import after_cfg, wrap_model_calls, wrap_runs
from ...hostkit.run_state import keep_run_state
from ...hostkit.sampling import check_flow_family
from ...hostkit.tokens import (longer_prompt, sequence_phrase_positions, sequence_word_positions, sequence_words,
                               stream_words)
from ...inversion.record import Inversion
from ...hostkit.wan_attention import install_wan_policy
from .policy import CrossPromptToPrompt, JointPromptToPrompt

WRAPPER_KEY = "invertedit_joint_source_row"
BLOCKS = {"all": ("double_block", "single_block"), "double": ("double_block",), "single": ("single_block",)}
#: The edited blocks whose maps the local blend reads: every edited block, or the double-stream blocks (SD3: every
#: joint block), where ConceptAttention (Helbling et al. 2025) reads Flux's per-word maps: a third of the blend's
#: work on Flux; on the toy flow model fewer cases whole at the paper's fractions, as many at self 0.8
#: (docs/measurements.md).
BLEND_BLOCKS = {name: BLOCKS[name] for name in ("all", "double")}


#: The tokenizers whose tokens make a DiT's text sequence, by the family's ``text_sequence``: Flux's T5 alone (CLIP-L
#: gives its pooled vector); SD3's all.
TEXT_SEQUENCE = {"t5xxl": ("t5xxl",)}
#: The text sequences the host pads to one length (T5's to 256 for Flux, CLIP's window and T5's for SD3): two prompts
#: of different lengths there are a prompt past a window. Qwen-Image's Qwen2.5-VL text is the prompt's own length:
#: the pair is padded to the longer one and the padding masked (``hostkit/dit_attention.py``'s ``PaddedPair``).
PADDED_BY_HOST = ("t5xxl", "clip+t5xxl", "umt5xxl")   # Wan's UMT5: padded to 512


def joint_swap(node: str, source_prompt: str, target_prompt: str, source: list, target: list,
               length: int, unpadded: bool = False) -> torch.Tensor | None:
    """Replace's word-swap matrix over the whole text sequence where a swapped word's token count
    differs in some stream (``replacement_mapper`` per stream), else None (token for token).
    ``unpadded`` (Qwen-Image: the prompts' own lengths, the shorter padded and masked): the tokens after
    the last word (the chat template's end) follow it one for one, as a word does, where the reference's
    rule (after the last swap, each position to itself) is for padding of one token; the target's
    padding takes nothing."""
    if all(len(s[0]) == len(t[0]) for s, t in zip(source, target)):
        return None
    n_src, n_tgt = len(source_prompt.split()), len(target_prompt.split())
    swap = torch.eye(length)
    for (src_ids, offset, size, src_words), (tgt_ids, _, _, tgt_words) in zip(source, target):
        if n_src != n_tgt or len(src_words) != n_src or len(tgt_words) != n_tgt:
            raise NodeInputError(node, f"mode 'replace' swaps words one for one, but the source prompt has {n_src} "
                                       f"words and the target {n_tgt}; swap words one for one, or use mode 'refine' "
                                       f"to add or remove words.")
        src_positions, tgt_positions = [p for _, p in src_words], [p for _, p in tgt_words]
        swapped = [a != b for (a, _), (b, _) in zip(src_words, tgt_words)]
        if unpadded:
            tails = [list(range(words[-1][-1] + 1, len(ids))) if words else list(range(len(ids)))
                     for words, ids in ((src_positions, src_ids), (tgt_positions, tgt_ids))]
            if all(tails):
                src_positions, tgt_positions, swapped = src_positions + [tails[0]], tgt_positions + [tails[1]], swapped + [True]
        block = replacement_mapper(src_positions, tgt_positions, swapped, size)
        if unpadded:
            block[:, len(tgt_ids):] = 0.0
        swap[offset:offset + size, offset:offset + size] = block
    return swap


def blend_positions(words: list, spec: str, name: str, node: str, prompt: str) -> list[int]:
    """The positions of comma-separated blend words in a prompt's text sequence (``sequence_words``)."""
    phrases = [w for w in spec.split(",") if w.strip()]
    if spec.strip() and not phrases:
        raise NodeInputError(node, f"input '{name}' is {spec!r}, which names no word; write words of the {prompt}, "
                                   f"comma-separated (e.g. 'circle'), or leave it empty.")
    return sorted({p for phrase in phrases for p in sequence_phrase_positions(words, phrase, node, name, prompt)})


def joint_attention_inject(node: str, model, clip, inversion: Inversion | None, source_prompt: str, target_prompt: str,
                           mode: str, reweight: str, cross_replace: float, self_replace: float, blocks: str,
                           guidance: float, cross_replace_words: str = "", blend_source_words: str = "",
                           blend_target_words: str = "", blend_threshold: float = 0.3, blend_start: float = 0.2,
                           blend_blocks: str = "all", blend_subtract_source_words: str = "",
                           blend_subtract_target_words: str = "", local_blend: bool = True):
    """A clone of ``model`` sampling Prompt-to-Prompt's pair on joint attention, and the pair's
    CONDITIONING (row 0 the source, row 1 the target, at ``guidance`` for Flux dev; the source row
    at the inversion's guidance). The local blend's words: ``attention/blend_words.choose_blend_words`` (the
    words that differ where none are given)."""
    family = check_flow_family(model, node)
    check_choice(node, "mode", mode, MODES)
    check_choice(node, "blocks", blocks, BLOCKS)
    check_choice(node, "blend_blocks", blend_blocks, BLEND_BLOCKS)
    check_fractions(node, cross_replace=cross_replace, self_replace=self_replace, blend_threshold=blend_threshold,
                    blend_start=blend_start)
    source, target = encode_prompt(clip, source_prompt), encode_prompt(clip, target_prompt)
    check_conditioning(node, "clip", source, model)
    lengths = (source[0][0].shape[1], target[0][0].shape[1])
    length, unpadded = max(lengths), family.text_sequence not in PADDED_BY_HOST
    if lengths[0] != lengths[1] and not unpadded:
        raise NodeInputError(node, f"the source prompt encodes to {lengths[0]} text tokens and the target prompt to "
                                   f"{lengths[1]}; joint attention aligns them token by token. "
                                   f"{longer_prompt(clip, {'source prompt': source_prompt, 'target prompt': target_prompt}, TEXT_SEQUENCE.get(family.text_sequence))}.")
    check_conditioning(node, "target_prompt", target, model)   # (Qwen-Image: the target's own length, checked too)
    padded = lengths[0] != lengths[1]   # Qwen-Image: the shorter prompt padded to the longer, the padding masked
    streams = [stream_words(clip, text, node, family.text_sequence, length, name)
               for name, text in (("source_prompt", source_prompt), ("target_prompt", target_prompt))]
    swap = refine = None
    if mode == "replace":
        swap = joint_swap(node, source_prompt, target_prompt, *streams, length, unpadded=padded)
    else:
        refine = joint_refine(*streams, length, unpadded=padded)
    src_words, tgt_words = (sequence_words(clip, text, node, family.text_sequence, length)
                            for text in (source_prompt, target_prompt))
    positions = sequence_word_positions(tgt_words, reweight, node, "reweight", "'square:2, blue:0.5'", "scale")
    check_reweight(node, positions)
    fractions = sequence_word_positions(tgt_words, cross_replace_words or "", node, "cross_replace_words",
                                        "'square:0.4'", "fraction")
    check_word_fractions(node, fractions)
    schedule = ReplaceSchedule(cross=cross_replace, self_=self_replace, self_layers=1.0,
                               words=tuple(sorted(fractions.items())), length=length)
    keys = dit_blocks(model, BLOCKS[blocks])
    if not keys:
        raise NodeInputError(node, f"input 'blocks' is '{blocks}', but this {family.config_name} model has no such "
                                   f"blocks; choose all or double.")
    sequences = {"source": src_words, "target": tgt_words}

    def positions_of(name: str, words: str, side: str) -> list[int]:
        return blend_positions(sequences[side], words, name, node, f"{side} prompt")

    words = found_words(node, choose_blend_words(node, local_blend, blend_source_words, blend_target_words,
                                                 blend_subtract_source_words, blend_subtract_target_words,
                                                 source_prompt, target_prompt), positions_of)
    check_subtract(node, words.blended, words.subtract_source, words.subtract_target)
    blend = None
    if words.blended:
        read = frozenset(key for key in keys if key[0] in BLEND_BLOCKS[blend_blocks])
        if not read:
            raise NodeInputError(node, f"input 'blend_blocks' is '{blend_blocks}', but the local blend reads the maps of "
                                       f"edited blocks and 'blocks' '{blocks}' edits none of those; choose blend_blocks "
                                       f"all, or blocks all or double (or turn local_blend off).")
        blend = local_blend_of(positions_of, words.inputs(), blend_threshold, blend_start, read)
        check_blend(node, blend_threshold, blend_start)
    cross = family.layout == "dit-cross"   # Wan: a self- and a cross-attention per block (CrossPromptToPrompt)
    if cross and blend is not None:
        raise NodeInputError(node, "the local blend reads per-word maps of one image; on Wan's clips it is not "
                                   "carried over: turn local_blend off (and leave the blend words empty).")
    check_acts(node, schedule, bool(positions), blend is not None)
    if not positions:
        warn_same_prompts(node, source_prompt, target_prompt)
    if inversion is not None:
        made = inversion.fingerprint.get("positive")
        if made is not None and made != conditioning_fingerprint(source):
            logging.warning("%s: the source prompt is not the prompt the image was inverted with, so the source row's "
                            "attention is not the image's; give the source prompt the inversion's prompt.", node)
    made = controller(schedule, blend, swap, refine, positions)
    policy = CrossPromptToPrompt(made) if cross else JointPromptToPrompt(made)
    patched = model.clone()
    keep_run_state(patched)   # the source row's and the local blend's per-run state
    if cross:
        install_wan_policy(patched, policy, keys, node, kinds=("self", "cross"))
    else:
        install_dit_policy(patched, policy, keys, node)
    source_guidance = guidance
    if padded:
        padded_source, padded_target, _ = pad_pair(source, target)
        install_padded_pair(patched, lengths, length, keys, node)
        pair = join_pair(padded_source, padded_target)
    else:
        pair = join_pair(source, target)
    if family.distilled_guidance:
        pair[0][1]["guidance"] = guidance
        if inversion is not None:
            source_guidance = float(inversion.settings.get("guidance", guidance))
    wrap_model_calls(patched, WRAPPER_KEY, SourceRow(inversion, source_guidance, node))   # the inversion step for step
    wrap_runs(patched, PAIR_RUN_KEY, replace_run(schedule, blend, source, bool(positions), node))
    if blend is not None:
        after_cfg(patched, 
            LocalBlendStep(policy, node, None if inversion is None else inversion.trajectory))
    return patched, pair
