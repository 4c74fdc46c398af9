"""Cross-Frame Attention's node: the clip's frame count from its LATENT, the anchors from the user,
the patch from the host kit (``hostkit/frames.py``; anchors in ``attention/cross_frame.py``)."""
from __future__ import annotations

from ...attention.cross_frame import ANCHORS, frame_anchors, parse_frames
from ...hostkit.errors import NodeInputError, check_at_least, check_choice
from ...hostkit.frames import clip_frames, cross_frame_model
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io
from . import ROW

PAPER = ROW.settings_of("InvertEditCrossFrameAttention")


class CrossFrameAttention(io.ComfyNode):
    NAME = "Cross-Frame Attention"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditCrossFrameAttention",
            display_name="Cross-Frame Attention",
            category="InvertEdit/attention",
            description=("Tune-A-Video's sparse-causal attention (Wu et al.), as FateZero (Qi et al.) edits clips with "
                         "it, or Text2Video-Zero's (Khachatryan et al.): every frame's self-attention reads the keys "
                         "and values of anchor frames of its own clip (first and previous), so the frames are drawn "
                         "alike. Composes with every attention editor (Attention Inject, Plug-and-Play, MasaCtrl), "
                         "applied before or after it. Memory: each self-attention call holds the anchors' hidden "
                         "states (A x the frame's tokens per row, A anchors; nothing is kept between steps); compute: "
                         "A x the self-attention's multiply-adds."),
            inputs=[
                io.Model.Input("model", tooltip="The SD model (or an editor's patched MODEL) that samples the clip."),
                io.Latent.Input("latent",
                                tooltip="The clip's LATENT (VAE Encode of the frames, or the inverter's LATENT): its "
                                        "batch is the frame count F. The sampler then runs F rows (the clip) or 2F "
                                        "(a pair editor's source frames, then target frames)."),
                io.Combo.Input("anchors", options=list(ANCHORS), default=ANCHORS[0],
                               tooltip="Which frames' keys and values each frame's self-attention reads (paper: "
                                       "'first and previous', Tune-A-Video / FateZero's sparse-causal attention: "
                                       "frames f-1 and 0, 2 anchors); 'first': Text2Video-Zero (1 anchor); 'first, "
                                       "previous and self' (3); 'middle': frame (F-1)//2, FateZero's shipped editing "
                                       "configs (1); 'listed frames': only those in anchor_frames. Each "
                                       "call holds the anchors' keys and values, A x the frame's own: at SD1.5 512 px "
                                       "the first layers' 4096 tokens x 320 channels x A per row (5.2 MB in fp16 at "
                                       "A = 2), freed after the call."),
                io.String.Input("anchor_frames", default="", optional=True,
                                tooltip="Frames every frame also reads, e.g. '0, 4' (-1: the last frame); with "
                                        "anchors 'listed frames', the only ones. Empty: none (the paper's)."),
                io.Int.Input("min_channels", default=PAPER["min_channels"], min=0, max=4096, optional=True,
                             tooltip="Layers narrower than this keep their own frame's keys (paper: 0, every layer; "
                                     "FateZero's editing configs: 640 with anchors 'middle', so SD1.5's 320-channel "
                                     "layers of the largest grid stay per frame)."),
            ],
            outputs=[io.Model.Output(display_name="MODEL", tooltip="The model with cross-frame self-attention.")],
        )

    @classmethod
    def execute(cls, model, latent, anchors, anchor_frames="", min_channels=PAPER["min_channels"]) -> io.NodeOutput:
        check_model_family(model, cls.NAME)
        check_choice(cls.NAME, "anchors", anchors, ANCHORS)
        frames = clip_frames(cls.NAME, "latent", latent["samples"])
        try:
            per_frame = frame_anchors(anchors, frames, parse_frames(anchor_frames or ""))
        except ValueError as e:
            raise NodeInputError(cls.NAME, f"input 'anchor_frames' ('{anchor_frames}'): {e}.") from None
        check_at_least(cls.NAME, 0, min_channels=min_channels)
        return io.NodeOutput(cross_frame_model(model, frames, per_frame, cls.NAME, min_channels))


NODES = [CrossFrameAttention]
