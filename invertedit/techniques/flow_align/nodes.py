"""FlowAlign (Kim et al. 2025): inversion-free editing with SD3/SD3.5 (the authors' model; here also Flux.1 and
Qwen-Image, the same math), a GUIDER for SamplerCustomAdvanced (math in ``align.py``, the guider in ``glue.py``)."""
from __future__ import annotations

from ...hostkit.errors import NodeInputError, check_conditioning, check_finite
from ...hostkit.sampling import check_flow_family, check_plain_prompt
from ...hostkit.schemas import io
from . import ROW
from .glue import NAME, FlowAlignSettings, flow_align_guider

_NODE = "InvertEditFlowAlign"


class FlowAlign(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=_NODE,
            display_name=NAME,
            category="InvertEdit/flow",
            description=(
                "FlowAlign (Kim et al.): edits an image with a rectified-flow model (SD3/SD3.5 as the authors; Flux.1 "
                "and Qwen-Image with the same math) without inverting it. As FlowEdit, each step moves the edit by "
                "the target's minus the source's velocity on a fresh noisy copy of the image, here with the target "
                "guided over the source prompt, plus a flow-matching regulariser that pulls the edit's clean "
                "estimate towards the source's. Every step acts. A GUIDER for SamplerCustomAdvanced: the source "
                "image's latent (VAE Encode) as latent_image, the model's schedule (BasicScheduler; Flux: after "
                "ModelSamplingFlux with the image size), KSamplerSelect euler, and RandomNoise (its seed draws the "
                "noises). Authors' settings (SD3): 33 steps, guidance 13.5, regularization 0.01; no negative prompt. "
                "3 model rows a step in one call (2 at guidance 1)."),
            inputs=[
                io.Model.Input("model", tooltip="An SD3/SD3.5 model (the authors'), Flux.1 (dev, schnell) or "
                                                "Qwen-Image."),
                io.Conditioning.Input("source", tooltip="The source prompt: a caption of the image as it is. It is "
                                                        "also what the target is guided against (no negative "
                                                        "prompt). Flux dev: its FluxGuidance (default 3.5) is used."),
                io.Conditioning.Input("target", tooltip="The target prompt: the caption of the edited image. Flux "
                                                        "dev: its FluxGuidance (default 3.5) is used."),
                io.Float.Input("guidance", default=ROW.settings[f"{_NODE}.guidance"], min=0.0, max=100.0, step=0.1,
                               round=0.01,
                               tooltip="Classifier-free guidance of the target prompt over the source prompt, on the "
                                       "edit's noisy copy (authors, SD3: 13.5; their class default 7). Higher edits "
                                       "more, lower keeps more of the image; 1: the target alone, one model row "
                                       "fewer a step. Flux (ours): 2, with FluxGuidance 3.5 on both prompts (on the toy "
                                       "flow world 13.5 replaced the picture)."),
                io.Float.Input("regularization", default=ROW.settings[f"{_NODE}.regularization"], min=0.0, max=1.0,
                               step=0.001, round=0.0001,
                               tooltip="The flow-matching regulariser's weight (the authors' code: 0.01): each step "
                                       "moves the edit by this fraction of the gap between the source's and the "
                                       "edit's clean estimates. Higher keeps more of the image, 0 is FlowEdit's "
                                       "step with every step acting. It acts per step, so more steps regularise "
                                       "more."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, source, target, guidance, regularization) -> io.NodeOutput:
        family = check_flow_family(model, NAME)
        check_finite(NAME, guidance=guidance, regularization=regularization)
        if not 0.0 <= regularization < 1.0:
            raise NodeInputError(NAME, f"regularization is {regularization:g}; it is the fraction of the gap to the "
                                       f"source's estimate closed each step: keep it in [0, 1) (authors: 0.01).")
        for name, conditioning in (("source", source), ("target", target)):
            check_conditioning(NAME, name, conditioning, model)
            check_plain_prompt(NAME, name, conditioning)
        settings = FlowAlignSettings(guidance, regularization)
        guider = flow_align_guider(model, source, target, settings, packed_noise=family.layout == "dit-double-single")
        return io.NodeOutput(guider)


NODES = [FlowAlign]
