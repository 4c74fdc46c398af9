"""Stable Flow (Avrahami et al.): edits that keep the image's identity, from the source's keys and
values in Flux's vital blocks. Policy in ``policy.py``, host glue in
``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import check_choice, check_finite, check_inversion
from ...hostkit.flow_inverters import FEWEST_STEPS, InvertedNoise
from ...hostkit.flow_pair import SharedNoise
from ...hostkit.schemas import SCHEDULERS, io
from ...hostkit.sockets import Inversion as InversionSocket
from ...attention.block_presets import LAYERVERSE, active_blocks
from ...inversion.methods import STABLE_FLOW
from . import ROW
from .glue import stable_flow, stable_flow_invert
from .policy import FLUX_VITAL_DOUBLE, FLUX_VITAL_SINGLE, NUDGE

#: the vital blocks: the two lists, or a published allocation's (Flux.1's; SD3's are refused with the model)
BLOCK_PRESETS = ("custom", *(name for name in LAYERVERSE if "Flux" in name))


class StableFlowInvert(io.ComfyNode):
    NAME = "Stable Flow Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditStableFlowInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Stable Flow's inversion (Avrahami et al.) of an image with Flux: the image's latent nudged (times "
                "1.15), then Euler steps up to noise with each step's velocity taken at its far end. Edit it with "
                "Stable Flow."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 model (dev or schnell)."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is."),
                io.Int.Input("steps", default=ROW.settings["InvertEditStableFlowInvert.steps"], min=FEWEST_STEPS["stable-flow"],
                             max=1000, tooltip="Steps (authors: 50; at least 2: one wrecks the picture)."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size "
                                       "is the authors')."),
                io.Float.Input("guidance", default=ROW.settings["InvertEditStableFlowInvert.guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance while inverting (authors: 1)."),
                io.Float.Input("nudge", default=NUDGE, min=0.5, max=2.0, step=0.01,
                               tooltip="Latent nudging: the image's latent is multiplied by this before inverting "
                                       "(authors: 1.15; 1 inverts the latent as it is)."),
            ],
            outputs=[InversionSocket.Output(tooltip="The inversion, for Stable Flow."),
                     io.Sigmas.Output(tooltip="The schedule to sample the edit on.")],
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, guidance, nudge) -> io.NodeOutput:
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        check_finite(cls.NAME, guidance=guidance, nudge=nudge)
        inversion = stable_flow_invert(cls.NAME, model, latent["samples"], positive, steps, scheduler, guidance, nudge)
        return io.NodeOutput(inversion, inversion.sampling_sigmas)


class StableFlow(io.ComfyNode):
    NAME = "Stable Flow"

    @classmethod
    def define_schema(cls) -> io.Schema:
        def blocks(numbers) -> str:
            return ", ".join(str(n) for n in numbers)

        return io.Schema(
            node_id="InvertEditStableFlow",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Stable Flow (Avrahami et al.) on a Flux model: the source and the edit sample as one pair, the source "
                "row following the image's inversion (or, without one, generated with the edit from one noise); in "
                "the vital blocks the edit attends with the source's image keys and values, so it keeps the image's "
                "identity. Sample with SamplerCustomAdvanced: BasicGuider with this node's MODEL and CONDITIONING, its "
                "NOISE, the inversion's SIGMAS (or a scheduler's), the euler sampler, the image's latent repeated "
                "twice (Repeat Latent Batch; or an empty latent of 2 rows); row 1 of the output is the edit."),
            inputs=[
                io.Model.Input("model", tooltip="The Flux model the image was inverted with."),
                InversionSocket.Input("inversion", optional=True,
                                      tooltip="Stable Flow Invert's inversion (authors: 50 steps, guidance 1, nudge "
                                              "1.15). Leave it out to generate the source and the edit together "
                                              "(authors: 15 steps, guidance 3.5)."),
                io.Conditioning.Input("source", tooltip="The source prompt, at its Flux guidance (authors: 1)."),
                io.Conditioning.Input("target", tooltip="The edit's prompt, at its Flux guidance (authors: 3)."),
                io.String.Input("double_blocks", default=blocks(FLUX_VITAL_DOUBLE),
                                tooltip="The vital double blocks (authors, Flux.1 dev: 0, 1, 17, 18)."),
                io.String.Input("single_blocks", default=blocks(FLUX_VITAL_SINGLE),
                                tooltip="The vital single blocks (authors, Flux.1 dev: 9, 34, 35, 37, 6; their "
                                        "layers 28, 53, 54, 56, 25 less the 19 double blocks)."),
                io.Combo.Input("block_preset", options=list(BLOCK_PRESETS), default="custom", optional=True,
                               tooltip="custom: the two lists above (the authors' vital blocks by default). 'LayerVerse "
                                       "(Flux.1 dev)': LayerVerse's calibrated blocks (Zhirnov et al.: double 1, 2; "
                                       "single 32-37) as the vital blocks, in place of the lists; Stable Flow shares "
                                       "the source's keys and values in all of them, everywhere (LayerVerse KV Inject "
                                       "keeps their masked and global roles). More vital blocks keep more of the "
                                       "source; fewer edit more."),
                io.Boolean.Input("aligned_source", default=False, optional=True,
                                 tooltip="Off (the authors' code): the source row takes the inverted latents as their "
                                         "loop sets them, one step behind and the first one from the image's end. "
                                         "On: the inverted latent of each step's own time."),
                io.Int.Input("seed", default=42, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             optional=True,
                             tooltip="Without an inversion: the seed of the one noise both rows start from "
                                     "(authors: 42)."),
            ],
            outputs=[io.Model.Output(tooltip="The model to sample the pair with."),
                     io.Conditioning.Output(tooltip="The pair: row 0 the source, row 1 the edit."),
                     io.Noise.Output(tooltip="The inverted noise for both rows: SamplerCustomAdvanced's noise, with "
                                             "the image's latent repeated twice as latent_image.")],
        )

    @classmethod
    def execute(cls, model, source, target, double_blocks, single_blocks, inversion=None, aligned_source=False,
                seed=42, block_preset="custom") -> io.NodeOutput:
        check_choice(cls.NAME, "block_preset", block_preset, BLOCK_PRESETS)
        if block_preset != "custom":   # a published allocation's blocks (attention/block_presets.py)
            double_blocks, single_blocks = (", ".join(map(str, active_blocks(block_preset, kind)))
                                            for kind in ("double_block", "single_block"))
        if inversion is not None:
            check_inversion(cls.NAME, inversion, model=model, methods=(STABLE_FLOW,))
        patched, pair = stable_flow(cls.NAME, model, inversion, source, target, double_blocks, single_blocks,
                                    aligned_source)
        noise = SharedNoise(seed, cls.NAME) if inversion is None else InvertedNoise(inversion, cls.NAME, rows=2)
        return io.NodeOutput(patched, pair, noise)


NODES = [StableFlowInvert, StableFlow]
