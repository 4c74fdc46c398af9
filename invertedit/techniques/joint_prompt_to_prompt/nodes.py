"""Joint Attention Inject: Prompt-to-Prompt on a Flux, SD3 or Qwen-Image model's joint attention. Policy in
``policy.py`` (on Prompt-to-Prompt's controllers, ``attention/controllers.py``), host glue in ``glue.py``."""
from __future__ import annotations

from ...attention.controllers import MODES
from ...hostkit.errors import check_finite, check_inversion
from ...hostkit.flow_inverters import InvertedNoise
from ...hostkit.flow_pair import SharedNoise
from ...hostkit.schemas import STEP_COUNTS, blend_inputs, blend_subtract_inputs, io, local_blend_input
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import FLOW_METHODS
from . import ROW
from .glue import BLEND_BLOCKS, BLOCKS, joint_attention_inject

PAPER = ROW.settings_of("InvertEditJointAttentionInject")


class JointAttentionInject(io.ComfyNode):
    NAME = "Joint Attention Inject"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditJointAttentionInject",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Prompt-to-Prompt (Hertz et al.) on a Flux, SD3 or Qwen-Image model's joint attention: in the target row, the "
                "image tokens' attention on the text tokens is the source's (replace, refine, reweight as Attention "
                "Inject does it on a UNet) and, in the first steps, their attention on the image tokens too; the text "
                "keeps its own attention. The source row follows the image's flow inversion (or, without one, is "
                "generated with the edit from one noise). The target follows the source outside the attention of the "
                "blend words, or of the words that differ between the prompts (local blend; local_blend off: a global "
                "edit). Sample with SamplerCustomAdvanced: BasicGuider (CFGGuider for SD3 and Qwen-Image) "
                "with this node's MODEL and CONDITIONING, its NOISE, the inversion's SIGMAS, the euler sampler and "
                "the image's latent repeated twice (Repeat Latent Batch); row 1 of the output is the edit. "
                + STEP_COUNTS),
            inputs=[
                io.Model.Input("model", tooltip="The Flux, SD3 or Qwen-Image model the image was inverted with."),
                io.Clip.Input("clip", tooltip="The model's text encoders: the node encodes both prompts and aligns "
                                              "their tokens."),
                InversionSocket.Input("inversion", optional=True,
                                      tooltip="Flow Invert's inversion of the image (euler, 50 steps as elsewhere); "
                                              "the source row follows it. Leave it out to edit an image generated "
                                              "from the seed."),
                io.String.Input("source_prompt", default="a red circle on a blue background",
                                tooltip="The prompt the image was inverted with."),
                io.String.Input("target_prompt", default="a red square on a blue background",
                                tooltip="The edited prompt: words swapped one for one (replace) or added/changed "
                                        "(refine)."),
                io.Combo.Input("mode", options=list(MODES), default="replace",
                               tooltip="replace: words swapped one for one (the paper's AttentionReplace); refine: "
                                       "words added or changed, aligned tokens keep the source's attention, new ones "
                                       "their own (AttentionRefine)."),
                io.String.Input("reweight", default="",
                                tooltip="Scale words' attention in the target while it is injected: 'word:scale, ...' "
                                        "(paper: e.g. 2 to 5); empty: none."),
                io.Float.Input("cross_replace", default=PAPER["cross_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps in which the image's attention on the text is the "
                                       "source's (Prompt-to-Prompt: 0.8): the first int(f * (N + 1)) of N steps."),
                io.Float.Input("self_replace", default=PAPER["self_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps in which the image's attention on the image is the "
                                       "source's (Prompt-to-Prompt's self-attention: 0.4): the first int(f * N)."),
                io.Combo.Input("blocks", options=list(BLOCKS), default="all",
                               tooltip="The blocks edited: all, double (Flux's double-stream, SD3's and Qwen-Image's joint blocks) or "
                                       "single (Flux's single-stream)."),
                io.Float.Input("guidance", default=3.5, min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance of the edit (the host's default: 3.5); the "
                                       "source row keeps the inversion's. Ignored by SD3, Qwen-Image and Flux schnell."),
                io.String.Input("cross_replace_words", default="", optional=True,
                                tooltip="Per-word schedules, 'word:fraction, ...' with words of the target prompt; "
                                        "empty: every word follows cross_replace."),
                *blend_inputs("euler (KSamplerSelect, or Flow Sampler's euler)", PAPER["blend_threshold"],
                              PAPER["blend_start"]),
                io.Combo.Input("blend_blocks", options=list(BLEND_BLOCKS), default="all", optional=True,
                               tooltip="Local blend: the edited blocks whose word maps make the mask. all: every "
                                       "edited block; double: Flux's double-stream blocks only (19 of 57, where "
                                       "ConceptAttention reads Flux's word maps; a third of the blend's work; SD3: its "
                                       "joint blocks, the same). Prompt-to-Prompt's code reads the UNet's layers at a "
                                       "quarter of the latent's size."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             optional=True, tooltip="Without an inversion: the seed of the one noise both rows "
                                                    "start from."),
                *blend_subtract_inputs(),
                local_blend_input(PAPER["local_blend"]),
            ],
            outputs=[io.Model.Output(tooltip="The model to sample the pair with."),
                     io.Conditioning.Output(tooltip="The pair: row 0 the source, row 1 the edit."),
                     io.Noise.Output(tooltip="The inverted noise for both rows (or the seed's): SamplerCustomAdvanced's "
                                             "noise.")],
        )

    @classmethod
    def execute(cls, model, clip, source_prompt, target_prompt, mode, reweight, cross_replace, self_replace, blocks,
                guidance, inversion=None, cross_replace_words="", blend_source_words="", blend_target_words="",
                blend_threshold=PAPER["blend_threshold"], blend_start=PAPER["blend_start"],
                blend_blocks="all", seed=0, blend_subtract_source_words="",
                blend_subtract_target_words="", local_blend=PAPER["local_blend"]) -> io.NodeOutput:
        check_finite(cls.NAME, guidance=guidance)
        if inversion is not None:
            check_inversion(cls.NAME, inversion, model=model, methods=FLOW_METHODS)
        patched, pair = joint_attention_inject(cls.NAME, model, clip, inversion, source_prompt, target_prompt, mode,
                                               reweight, cross_replace, self_replace, blocks, guidance,
                                               cross_replace_words, blend_source_words, blend_target_words,
                                               blend_threshold, blend_start, blend_blocks, blend_subtract_source_words,
                                               blend_subtract_target_words, local_blend)
        noise = SharedNoise(seed, cls.NAME) if inversion is None else InvertedNoise(inversion, cls.NAME, rows=2)
        return io.NodeOutput(patched, pair, noise)


NODES = [JointAttentionInject]
