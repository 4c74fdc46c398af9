"""TokenFlow (Geyer et al., ICLR 2024): a consistent edit of an inverted clip (math in
``propagation.py``, the patches in ``glue.py``; the defaults are the authors' ``config_pnp.yaml``)."""
from __future__ import annotations

from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from . import ROW
from .glue import tokenflow

PAPER = ROW.settings_of("InvertEditTokenFlow")


class TokenFlow(io.ComfyNode):
    NAME = "TokenFlow"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditTokenFlow",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=(
                "TokenFlow (Geyer et al.): edits a clip (an IMAGE batch, inverted in one run) consistently. At every "
                "step a random keyframe per batch of frames is edited jointly with the others (extended "
                "self-attention, Plug-and-Play injection from the source), and every frame's self-attention is "
                "replaced by the keyframes' edited one through the source's nearest-neighbour field. Sample the "
                "inversion's LATENT with KSamplerAdvanced (add_noise disable, the inversion's steps and scheduler, "
                "sampler ddim or euler) and the target prompt; paper: cfg 7.5, 50 steps. Each step runs the UNet "
                "on the keyframes and then on every frame, each with the source's rows: about 1.5 + 1.5/batch_size "
                "times stock sampling's rows at cfg > 1."),
            inputs=[
                io.Model.Input("model", tooltip="The model the clip was inverted with."),
                InversionSocket.Input("inversion", tooltip="The clip's inversion (DDIM Invert of the clip's latent: "
                                                           "all frames in one run; paper: an empty prompt)."),
                io.Conditioning.Input("source", tooltip="The prompt the clip was inverted with (paper: empty); the "
                                                        "source rows are denoised under it."),
                io.Int.Input("batch_size", default=PAPER["batch_size"], min=1, max=4096,
                             tooltip=f"Frames per batch: one keyframe is drawn in each at every step (paper: "
                                     f"{PAPER['batch_size']}), at most the clip's frame count. Kept per model call: "
                                     f"every self-attention layer's input and output of each keyframe, in every "
                                     f"branch (source, conditional, unconditional), until the frames are "
                                     f"propagated."),
                io.Float.Input("self_attention_injection", default=PAPER["self_attention_injection"], min=0.0,
                               max=1.0, step=0.05,
                               tooltip=f"Fraction of the steps in which the keyframes' decoder self-attention takes "
                                       f"the source's queries and keys (pnp_attn_t; paper: "
                                       f"{PAPER['self_attention_injection']:g})."),
                io.Float.Input("feature_injection", default=PAPER["feature_injection"], min=0.0, max=1.0, step=0.05,
                               tooltip=f"Fraction of the steps in which the decoder's fourth block takes the source's "
                                       f"features (pnp_f_t; paper: {PAPER['feature_injection']:g})."),
                io.Int.Input("seed", default=PAPER["seed"], min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip=f"Seed of the keyframes drawn at every step (the authors' config: "
                                     f"{PAPER['seed']}); the same seed draws the same keyframes."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model with TokenFlow's passes in every model call.")],
        )

    @classmethod
    def execute(cls, model, inversion, source, batch_size, self_attention_injection, feature_injection,
                seed) -> io.NodeOutput:
        return io.NodeOutput(tokenflow(cls.NAME, model, inversion, source, batch_size, self_attention_injection,
                                       feature_injection, seed, PAPER))


NODES = [TokenFlow]
