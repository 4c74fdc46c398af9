"""FateZero Fusion's node (math in ``attention/fatezero.py`` and ``fusion.py``, host glue in ``glue.py``)."""
from __future__ import annotations

from ...hostkit.schemas import io, pair_inputs, pair_outputs
from . import ROW
from .glue import MODES, fatezero

PAPER = ROW.settings_of("InvertEditFateZero")


class FateZero(io.ComfyNode):
    NAME = "FateZero Fusion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFateZero",
            display_name="FateZero Fusion",
            category="InvertEdit/attention",
            description=("FateZero (Qi et al., ICCV 2023) on a clip: the target frames take the source's attention "
                         "maps, cross-attention replaced (or refined) for the first steps, self-attention the "
                         "source's outside the edited words' mask (from the source's cross-attention), with "
                         "sparse-causal attention (frames 0 and f-1) across the frames; layers of at most 32x32 "
                         "tokens, as the authors. Give it the clip's inverted LATENT (DDIM Invert, Direct Inversion "
                         "and Apply Inversion on the output MODEL keep the source frames on the inversion: their maps "
                         "are the inversion's). Outputs the MODEL, the CONDITIONING of 2F rows and the LATENT of 2F "
                         "rows (source frames, then target frames) for one sampler run. Memory: the maps of the "
                         "edited layers are made explicitly (SD1.5, a 32x32 self-attention layer: 8 heads x 1024 x "
                         "2048 per frame, 64 MB in float32)."),
            inputs=[
                *pair_inputs(source_default='a red circle on a blue background',
                             source_tooltip='The prompt the clip was inverted with.',
                             target_default='a yellow circle on a blue background',
                             target_tooltip='The edited prompt.'),
                io.Combo.Input("mode", options=list(MODES), default=MODES[0],
                               tooltip="refine: target words aligned with the source's take its maps, new words "
                                       "keep their own (the authors' configs: is_replace_controller False); "
                                       "replace: token for token (prompts of the same token count)."),
                io.Float.Input("cross_replace", default=PAPER["cross_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose cross-attention maps come from the source "
                                       "(paper: 0.8; the authors' configs 0.7 to 0.8)."),
                io.Float.Input("self_replace", default=PAPER["self_replace"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose self-attention maps are fused (paper: 0.6; the "
                                       "authors' configs 0.5 to 0.9)."),
                io.String.Input("blend_words", default="", optional=True,
                                tooltip="Words of the source prompt whose cross-attention makes the self-attention "
                                        "mask, e.g. 'circle': inside it the target keeps its own self-attention "
                                        "(the authors' blend_self_attention). Empty: the source's self-attention "
                                        "everywhere. While blending, the source frames run once more per step."),
                io.Float.Input("blend_threshold", default=PAPER["blend_threshold"], min=0.0, max=1.0, step=0.05,
                               optional=True,
                               tooltip="The mask's threshold on the words' normalised maps (paper: 0.3, the code's "
                                       "default blend_th)."),
            ],
            outputs=pair_outputs('attention fusion patches'),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, mode, cross_replace, self_replace,
                blend_words="", blend_threshold=PAPER["blend_threshold"]) -> io.NodeOutput:
        return io.NodeOutput(*fatezero(cls.NAME, model, clip, latent, source_prompt, target_prompt, mode,
                                       cross_replace, self_replace, blend_words or "", blend_threshold))


NODES = [FateZero]
