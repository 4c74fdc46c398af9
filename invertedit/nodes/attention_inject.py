"""Attention Inject: Prompt-to-Prompt on a source/target pair (math in ``attention/``).

The node encodes the source and target prompts with the CLIP (token counts come from the
host's tokenizer), returns them as one batch-2 CONDITIONING (row 0 source, row 1 target) and
the LATENT pair, and patches every transformer block of the UNet (found from the model, so
SD1.x, SD2.x and SDXL layouts all work) so that, in the conditional rows of each pair, the
target takes the source's attention maps on the scheduled steps. Source and target run in
one sampler call; maps exist only inside the attention call that uses them.
"""
from __future__ import annotations

import torch
from ..hostkit.schemas import io

from ..hostkit.attention_driver import install_policy
from ..hostkit.errors import NodeInputError, check_choice, check_conditioning
from ..hostkit.keys import PAIR_RUN_KEY, SKIP_SOURCE_KEY
from ..hostkit.pair import encode_prompt, join_pair, prepare_pair_model, warn_same_prompts
from ..hostkit.prompt_to_prompt import (MODES, LocalBlendStep, PromptToPromptRun, SkipUnusedSource, check_acts,
                                        check_blend, check_fractions, check_reweight, check_subtract,
                                        check_word_fractions, controller, local_blend)
from ..hostkit.layout import map_blocks
from ..hostkit.sampling import check_model_family, wrap_model_calls, wrap_runs
from ..hostkit.schemas import pair_inputs, pair_outputs
from ..hostkit.tokens import blend_word_positions, prompt_tokens, word_positions, word_tokens
from ..attention.align import refine_mapper, replacement_mapper
from ..attention.prompt_to_prompt import SELF_LAYERS, ReplaceSchedule


STEP_COUNTS = ("Steps counted as the reference code does: of N sampling steps, cross-attention maps are injected in the "
               "first int(f * (N + 1)) steps, self-attention maps in the first int(f * N) (50 steps at 0.8: 40; 15 steps "
               "at 0.1: 1). The sampler's log says the counts of each run.")


def blend_inputs(sampler: str) -> list:
    """The local blend's inputs (its words, threshold and start), as both Prompt-to-Prompt nodes (UNet
    and joint attention) take them; ``sampler`` says which sampler the blend's step is made for."""
    return [io.String.Input("blend_source_words", default="", optional=True,
                            tooltip="Local blend (paper's LocalBlend): words of the source prompt whose attention "
                                    "marks the edited region, comma-separated (PIE-Bench's blended word, e.g. "
                                    "'circle'). Empty (with blend_target_words empty): no local blend. The blend "
                                    f"is made for the {sampler} step: sample with {sampler}."),
            io.String.Input("blend_target_words", default="", optional=True,
                            tooltip="Local blend: words of the target prompt whose attention marks the edited region "
                                    "(e.g. 'square'). The mask is the OR of the source's and the target's."),
            io.Float.Input("blend_threshold", default=0.3, min=0.01, max=0.99, step=0.01, optional=True,
                           tooltip="Local blend: threshold on the max-pooled maps, normalised to a maximum of 1 "
                                   "(paper: 0.3); between 0 and 1: at 1 no pixel is edited, at 0 every pixel."),
            io.Float.Input("blend_start", default=0.2, min=0.0, max=0.95, step=0.05, optional=True,
                           tooltip="Local blend: fraction of the steps before blending starts (paper: 0.2); the "
                                   "latents are blended after each step from step int(f * N) on (below 1: at 1 "
                                   "it never starts).")]


def blend_subtract_inputs() -> list:
    """The local blend's subtract words (Prompt-to-Prompt's code: ``LocalBlend(..., substruct_words=...)``), after
    every other input of both Prompt-to-Prompt nodes."""
    return [io.String.Input("blend_subtract_source_words", default="", optional=True,
                            tooltip="Local blend: words of the source prompt whose attention is taken out of the edited "
                                    "region, comma-separated (the reference code's substruct_words, e.g. 'house' to "
                                    "change the background and not the house; its maps are not max-pooled). Needs "
                                    "blend words; empty (the paper's default): none."),
            io.String.Input("blend_subtract_target_words", default="", optional=True,
                            tooltip="Local blend: words of the target prompt whose attention is taken out of the edited "
                                    "region (the source's and the target's are OR-ed, as the blend words are); empty: "
                                    "none.")]


class AttentionInject(io.ComfyNode):
    NAME = "Attention Inject"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditAttentionInject",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=("Prompt-to-Prompt (Hertz et al.), as its reference code does it: the target prompt's branch takes "
                         "the source branch's attention maps, so the image keeps its layout while the words change "
                         "(replace, refine), chosen words' maps can be scaled (reweight), and with blend words the "
                         "target follows the source outside the words' attention (local blend). Outputs the patched "
                         "MODEL, the source/target CONDITIONING pair and the LATENT pair for one sampler run; combine "
                         "with an inversion (Direct Inversion keeps the source row exact). " + STEP_COUNTS),
            inputs=[
                *pair_inputs(source_default="a red circle on a blue background",
                             source_tooltip="The prompt the image was inverted with.",
                             target_default="a red square on a blue background",
                             target_tooltip="The edited prompt: words swapped one for one (replace) or added/changed "
                                            "(refine)."),
                io.Combo.Input("mode", options=list(MODES), default="replace",
                               tooltip="replace: words swapped one for one, the same number of words; a swapped word's "
                                       "tokens take the source word's maps, spread evenly when their token counts differ "
                                       "(the paper's AttentionReplace). refine: words added or changed; tokens aligned "
                                       "between the prompts keep the source's maps, new ones their own (AttentionRefine)."),
                io.String.Input("reweight", default="",
                                tooltip="Scale words' cross-attention maps in the target while cross-attention is injected: "
                                        "'word:scale, ...' with words of the target prompt (> 1 stronger, < 1 weaker, "
                                        "negative inverts; paper: e.g. 2 to 5). Combines with replace or refine; empty: none."),
                io.Float.Input("cross_replace", default=0.8, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose cross-attention maps are injected (paper: 0.4-0.8; "
                                       "PIE-Bench: 0.4): the first int(f * (N + 1)) of N steps."),
                io.String.Input("cross_replace_words", default="", optional=True,
                                tooltip="Per-word cross-attention schedules, 'word:fraction, ...' with words of the target "
                                        "prompt (paper: e.g. a swapped word at 0.4 while the rest keep cross_replace); "
                                        "each word's maps are injected in the first int(f * (N + 1)) steps; empty: every "
                                        "word follows cross_replace."),
                io.Float.Input("self_replace", default=0.4, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose self-attention maps are injected (paper: 0.4-0.6; "
                                       "PIE-Bench: 0.6): the first int(f * N) of N steps."),
                io.Combo.Input("self_replace_layers", options=list(SELF_LAYERS), default="coarser than latent", optional=True,
                               tooltip="Which layers' self-attention is replaced, relative to the latent so it follows "
                                       "the image size. 'coarser than latent' (reference code, PIE-Bench): layers of at "
                                       "most a quarter of the latent's tokens (SD1.5 512 px: 32x32 and coarser; SDXL "
                                       "1024 px: 64x64 and 32x32). 'latent/4 and coarser': the original generation "
                                       "notebook's 16x16 at 512 px. 'all': every layer."),
                *blend_inputs("ddim or euler"),
                *blend_subtract_inputs(),
            ],
            outputs=pair_outputs("attention patches"),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, mode, reweight, cross_replace,
                self_replace, cross_replace_words="", self_replace_layers="coarser than latent",
                blend_source_words="", blend_target_words="", blend_threshold=0.3, blend_start=0.2,
                blend_subtract_source_words="", blend_subtract_target_words="") -> io.NodeOutput:
        check_model_family(model, AttentionInject.NAME)
        check_choice(AttentionInject.NAME, "mode", mode, MODES)
        check_choice(AttentionInject.NAME, "self_replace_layers", self_replace_layers, SELF_LAYERS)
        check_fractions(AttentionInject.NAME, cross_replace=cross_replace, self_replace=self_replace,
                        blend_threshold=blend_threshold, blend_start=blend_start)
        (src_ids, length), (tgt_ids, _) = (prompt_tokens(clip, text, AttentionInject.NAME, name, LONGER)
                                           for name, text in (("source_prompt", source_prompt),
                                                              ("target_prompt", target_prompt)))
        swap = refine = None
        if mode == "replace" and len(src_ids) != len(tgt_ids):
            swap = word_swap(clip, source_prompt, target_prompt, length)
        if mode == "refine":
            refine = refine_mapper(src_ids, tgt_ids, length)
        positions = word_positions(clip, tgt_ids, reweight, AttentionInject.NAME)
        check_reweight(AttentionInject.NAME, positions)
        fractions = word_positions(clip, tgt_ids, cross_replace_words or "", AttentionInject.NAME, "cross_replace_words",
                                   "'square:0.4'", "fraction")
        check_word_fractions(AttentionInject.NAME, fractions)
        schedule = ReplaceSchedule(cross=cross_replace, self_=self_replace, self_layers=SELF_LAYERS[self_replace_layers],
                                   words=tuple(sorted(fractions.items())), length=length)
        blend = None
        blended = bool((blend_source_words or "").strip() or (blend_target_words or "").strip())
        check_subtract(AttentionInject.NAME, blended, blend_subtract_source_words, blend_subtract_target_words)
        if blended:
            ids_of = {"source": src_ids, "target": tgt_ids}
            blend = local_blend(lambda name, words, side: blend_word_positions(clip, ids_of[side], words, name,
                                                                               AttentionInject.NAME, f"{side} prompt"),
                                dict(blend_source_words=blend_source_words, blend_target_words=blend_target_words,
                                     blend_subtract_source_words=blend_subtract_source_words,
                                     blend_subtract_target_words=blend_subtract_target_words),
                                blend_threshold, blend_start, map_blocks(model))
            check_blend(AttentionInject.NAME, blend_threshold, blend_start)
        check_acts(AttentionInject.NAME, schedule, bool(positions), blend is not None)
        if not positions:
            warn_same_prompts(AttentionInject.NAME, source_prompt, target_prompt)
        m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1", "attn2"), AttentionInject.NAME)
        policy = controller(schedule, blend, swap, refine, positions)
        install_policy(m, policy, blocks, AttentionInject.NAME)
        source = encode_prompt(clip, source_prompt)
        check_conditioning(AttentionInject.NAME, "clip", source, model)
        wrap_runs(m, PAIR_RUN_KEY, PromptToPromptRun(policy, source, reweight=bool(positions)))
        wrap_model_calls(m, SKIP_SOURCE_KEY, SkipUnusedSource(schedule, blend is not None))
        if blend is not None:
            m.set_model_sampler_post_cfg_function(LocalBlendStep(policy))
        return io.NodeOutput(m, join_pair(source, encode_prompt(clip, target_prompt)), pair_latent)


LONGER = (", and Prompt-to-Prompt aligns the two prompts' attention maps token by token within one window (MasaCtrl "
          "and Plug-and-Play take longer prompts)")


def word_swap(clip, source: str, target: str, length: int) -> torch.Tensor:
    """Replace's word-swap matrix for prompts whose swapped words tokenize to different counts."""
    src, tgt = word_tokens(clip, source, AttentionInject.NAME), word_tokens(clip, target, AttentionInject.NAME)
    if len(src) != len(tgt) or len(src) != len(source.split()) or len(tgt) != len(target.split()):
        raise NodeInputError(AttentionInject.NAME, f"mode 'replace' swaps words one for one, but the source prompt has {len(source.split())} "
                                   f"words and the target {len(target.split())}; swap words one for one, or use mode "
                                   f"'refine' to add or remove words.")
    return replacement_mapper([p for _, p in src], [p for _, p in tgt], [a != b for (a, _), (b, _) in zip(src, tgt)],
                              length)


NODES = [AttentionInject]
