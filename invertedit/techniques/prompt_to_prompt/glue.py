"""Prompt-to-Prompt on a UNet inside the host: Attention Inject's patched clone of the model, the
controller (``attention/controllers.py``) run on the UNet's attention layers by the host kit's
driver, with the pair's run checks, the local blend's post-CFG step (``hostkit/blending.py``), and
the model-call wrapper that leaves out the source rows nobody reads."""
from __future__ import annotations

import torch

from ...attention.align import refine_mapper, replacement_mapper
from ...attention.blend_words import choose_blend_words, found_words
from ...attention.controllers import MODES, controller
from ...attention.local_blend import local_blend_of
from ...attention.prompt_to_prompt import (SELF_LAYERS, ReplaceSchedule, check_acts, check_blend, check_fractions,
                                           check_reweight, check_subtract, check_word_fractions)
from ...hostkit.attention_driver import install_policy
from ...hostkit.blending import LocalBlendStep
from ...hostkit.errors import NodeInputError, check_choice, check_conditioning
from ...hostkit.keys import PAIR_RUN_KEY, SOURCE_ON_TRAJECTORY, TARGET_ONLY
from ...hostkit.layout import map_blocks
from ...hostkit.pair import encode_prompt, join_pair, prepare_pair_model, replace_run, warn_same_prompts
from ...hostkit.patches import after_cfg, take_rows, wrap_model_calls, wrap_runs
from ...hostkit.sampling import check_model_family
from ...hostkit.steps import step_at
from ...hostkit.tokens import blend_word_positions, prompt_tokens, word_positions, word_tokens

NAME = "Attention Inject"   # the node these patches belong to, for messages
SKIP_SOURCE_KEY = "invertedit_skip_source"   # the APPLY_MODEL wrapper of the target rows' call alone


class SkipUnusedSource:
    """APPLY_MODEL wrapper that leaves out the source rows nobody reads, where that saves a whole
    UNet call's rows without splitting the call. With a Direct Inversion (Ju et al., "PnP
    Inversion") the source rows' prediction is replaced after CFG by the one that lands on the
    inversion's trajectory, so the source's own prediction is never used; what is used of the
    source is its conditional row's attention maps (Prompt-to-Prompt, Hertz et al., takes them
    from the conditional rows only), while maps are injected or a local blend reads them. Once
    no layer needs them, the step runs the target rows alone, in one call of half the rows; the
    left-out rows get the target's prediction as a stand-in, which the Direct correction
    overwrites. While any map is injected every row runs, in the one call the host makes:
    leaving out only the source's unconditional row would split the step into two UNet calls,
    which costs a whole call on a GPU, where a step is bound by dispatching kernels (issue 23)."""

    def __init__(self, schedule: ReplaceSchedule, blend: bool):
        self.schedule, self.blend = schedule, blend

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = list(transformer_options.get("cond_or_uncond", []))
        n, batch = len(chunks), x.shape[0]
        if transformer_options.get(SOURCE_ON_TRAJECTORY) != 1 or not n or batch != 2 * n \
                or transformer_options.get(TARGET_ONLY) or self.blend:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        step, steps = step_at(transformer_options["sample_sigmas"], transformer_options.get("sigmas", t))
        if self.schedule.injects_any(step, steps):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        options = dict(transformer_options, **{TARGET_ONLY: True})
        if isinstance(options.get("sigmas"), torch.Tensor) and options["sigmas"].shape[0] == 2:
            options["sigmas"] = options["sigmas"][1:]
        index = slice(1, None, 2)   # every chunk's target row
        args = take_rows((x, t, c_concat, c_crossattn, control, kwargs), index, batch)
        out = executor(*args[:5], options, **args[5])
        return out.repeat_interleave(2, dim=0)   # each target's prediction stands in for its source's


def attention_inject(node: str, model, clip, latent: dict, source_prompt: str, target_prompt: str, mode: str,
                     reweight: str, cross_replace: float, self_replace: float, cross_replace_words: str,
                     self_replace_layers: str, blend_source_words: str, blend_target_words: str,
                     blend_threshold: float, blend_start: float, blend_subtract_source_words: str,
                     blend_subtract_target_words: str, local_blend: bool = True):
    """A clone of ``model`` whose UNet attention runs Prompt-to-Prompt's controller on the source/target
    pair, the pair's CONDITIONING (row 0 the source, row 1 the target) and the LATENT pair. The local
    blend's words: ``attention/blend_words.choose_blend_words`` (the words that differ where none are given)."""
    check_model_family(model, node)
    check_choice(node, "mode", mode, MODES)
    check_choice(node, "self_replace_layers", self_replace_layers, SELF_LAYERS)
    check_fractions(node, cross_replace=cross_replace, self_replace=self_replace,
                    blend_threshold=blend_threshold, blend_start=blend_start)
    (src_ids, length), (tgt_ids, _) = (prompt_tokens(clip, text, node, name, LONGER)
                                       for name, text in (("source_prompt", source_prompt),
                                                          ("target_prompt", target_prompt)))
    swap = refine = None
    if mode == "replace" and len(src_ids) != len(tgt_ids):
        swap = word_swap(clip, source_prompt, target_prompt, length)
    if mode == "refine":
        refine = refine_mapper(src_ids, tgt_ids, length)
    positions = word_positions(clip, tgt_ids, reweight, node)
    check_reweight(node, positions)
    fractions = word_positions(clip, tgt_ids, cross_replace_words or "", node, "cross_replace_words",
                               "'square:0.4'", "fraction")
    check_word_fractions(node, fractions)
    schedule = ReplaceSchedule(cross=cross_replace, self_=self_replace, self_layers=SELF_LAYERS[self_replace_layers],
                               words=tuple(sorted(fractions.items())), length=length)
    ids_of = {"source": src_ids, "target": tgt_ids}

    def positions_of(name: str, words: str, side: str) -> list[int]:
        return blend_word_positions(clip, ids_of[side], words, name, node, f"{side} prompt")

    words = found_words(node, choose_blend_words(node, local_blend, blend_source_words, blend_target_words,
                                                 blend_subtract_source_words, blend_subtract_target_words,
                                                 source_prompt, target_prompt), positions_of)
    check_subtract(node, words.blended, words.subtract_source, words.subtract_target)
    blend = None
    if words.blended:
        blend = local_blend_of(positions_of, words.inputs(), blend_threshold, blend_start, map_blocks(model))
        check_blend(node, blend_threshold, blend_start)
    check_acts(node, schedule, bool(positions), blend is not None)
    if not positions:
        warn_same_prompts(node, source_prompt, target_prompt)
    if blend is not None and latent["samples"].ndim == 4 and latent["samples"].shape[0] > 1:
        raise NodeInputError(node, f"input 'latent' is a clip of {latent['samples'].shape[0]} frames, and the local "
                                   f"blend masks one image pair; set local_blend off for a clip (a global edit of "
                                   f"every frame; Cross-Frame Attention keeps the frames consistent).")
    m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1", "attn2"), node)
    policy = controller(schedule, blend, swap, refine, positions)
    install_policy(m, policy, blocks, node)
    source = encode_prompt(clip, source_prompt)
    check_conditioning(node, "clip", source, model)
    wrap_runs(m, PAIR_RUN_KEY, replace_run(schedule, blend, source, bool(positions), node))
    wrap_model_calls(m, SKIP_SOURCE_KEY, SkipUnusedSource(schedule, blend is not None))
    if blend is not None:
        after_cfg(m, LocalBlendStep(policy, node))
    frames = pair_latent["samples"].shape[0] // 2   # a clip's pair in blocks (F = 1: one image)
    return m, join_pair(source, encode_prompt(clip, target_prompt), frames), pair_latent


LONGER = (", and Prompt-to-Prompt aligns the two prompts' attention maps token by token within one window (MasaCtrl "
          "and Plug-and-Play take longer prompts)")


def word_swap(clip, source: str, target: str, length: int) -> torch.Tensor:
    """Replace's word-swap matrix for prompts whose swapped words tokenize to different counts."""
    src, tgt = word_tokens(clip, source, NAME), word_tokens(clip, target, NAME)
    if len(src) != len(tgt) or len(src) != len(source.split()) or len(tgt) != len(target.split()):
        raise NodeInputError(NAME, f"mode 'replace' swaps words one for one, but the source prompt has "
                                   f"{len(source.split())} words and the target {len(target.split())}; swap words one "
                                   f"for one, or use mode 'refine' to add or remove words.")
    return replacement_mapper([p for _, p in src], [p for _, p in tgt], [a != b for (a, _), (b, _) in zip(src, tgt)],
                              length)
