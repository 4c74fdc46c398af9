"""Attention Inject: Prompt-to-Prompt on a source/target pair (policy in ``attention/controllers.py``,
host glue in ``glue.py``).

The node encodes the source and target prompts with the CLIP (token counts come from the
host's tokenizer), returns them as one batch-2 CONDITIONING (row 0 source, row 1 target) and
the LATENT pair, and patches every transformer block of the UNet (found from the model, so
SD1.x, SD2.x and SDXL layouts all work) so that, in the conditional rows of each pair, the
target takes the source's attention maps on the scheduled steps. Source and target run in
one sampler call; maps exist only inside the attention call that uses them.
"""
from __future__ import annotations

from ...attention.controllers import MODES
from ...attention.prompt_to_prompt import SELF_LAYERS
from ...hostkit.schemas import (STEP_COUNTS, blend_inputs, blend_subtract_inputs, io, local_blend_input, pair_inputs,
                                pair_outputs)
from . import ROW
from .glue import attention_inject

PAPER = ROW.settings_of("InvertEditAttentionInject")


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
                         "(replace, refine), chosen words' maps can be scaled (reweight), and the target follows the source "
                         "outside the attention of the blend words, or of the words that differ between the prompts "
                         "(local blend; local_blend off: a global edit). Outputs the patched "
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
                io.Float.Input("cross_replace", default=PAPER["cross_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose cross-attention maps are injected (paper: 0.4-0.8; "
                                       "PIE-Bench: 0.4): the first int(f * (N + 1)) of N steps."),
                io.String.Input("cross_replace_words", default="", optional=True,
                                tooltip="Per-word cross-attention schedules, 'word:fraction, ...' with words of the target "
                                        "prompt (paper: e.g. a swapped word at 0.4 while the rest keep cross_replace); "
                                        "each word's maps are injected in the first int(f * (N + 1)) steps; empty: every "
                                        "word follows cross_replace."),
                io.Float.Input("self_replace", default=PAPER["self_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose self-attention maps are injected (paper: 0.4-0.6; "
                                       "PIE-Bench: 0.6): the first int(f * N) of N steps."),
                io.Combo.Input("self_replace_layers", options=list(SELF_LAYERS), default="coarser than latent", optional=True,
                               tooltip="Which layers' self-attention is replaced, relative to the latent so it follows "
                                       "the image size. 'coarser than latent' (reference code, PIE-Bench): layers of at "
                                       "most a quarter of the latent's tokens (SD1.5 512 px: 32x32 and coarser; SDXL "
                                       "1024 px: 64x64 and 32x32). 'latent/4 and coarser': the original generation "
                                       "notebook's 16x16 at 512 px. 'all': every layer."),
                *blend_inputs("ddim or euler", PAPER["blend_threshold"], PAPER["blend_start"]),
                *blend_subtract_inputs(),
                local_blend_input(PAPER["local_blend"]),
            ],
            outputs=pair_outputs("attention patches"),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, mode, reweight, cross_replace,
                self_replace, cross_replace_words="", self_replace_layers="coarser than latent",
                blend_source_words="", blend_target_words="", blend_threshold=PAPER["blend_threshold"],
                blend_start=PAPER["blend_start"],
                blend_subtract_source_words="", blend_subtract_target_words="",
                local_blend=PAPER["local_blend"]) -> io.NodeOutput:
        return io.NodeOutput(*attention_inject(
            cls.NAME, model, clip, latent, source_prompt, target_prompt, mode, reweight, cross_replace, self_replace,
            cross_replace_words, self_replace_layers, blend_source_words, blend_target_words, blend_threshold,
            blend_start, blend_subtract_source_words, blend_subtract_target_words, local_blend))


NODES = [AttentionInject]
