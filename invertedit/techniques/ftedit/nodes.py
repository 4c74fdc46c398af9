"""FTEdit (Xu et al., CVPR 2025): FTEdit Invert (the fixed-point inversion, ``fixed_point.py``) and FTEdit
(the invariance control of an SD3 source/target pair, ``invariance.py``); host glue in ``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import check_choice, check_finite, check_inversion
from ...hostkit.schemas import SCHEDULERS, flow_inverter_outputs, io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import FLOW_EULER, FTEDIT
from . import ROW
from .glue import ftedit, ftedit_invert

INVERT = ROW.settings_of("InvertEditFTEditInvert")
EDIT = ROW.settings_of("InvertEditFTEdit")


class FTEditInvert(io.ComfyNode):
    NAME = "FTEdit Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFTEditInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "FTEdit's inversion (Xu et al., CVPR 2025) of an image with a rectified-flow model (SD3/SD3.5, the "
                "authors'; Flux.1 and Qwen-Image run too): each Euler step solved as a fixed point, the velocity "
                "evaluated at the step's far end and averaged over the iterations, so sampling back with plain Euler "
                "retraces the image closely (iterations + 1 evaluations a step). Sample back with "
                "SamplerCustomAdvanced: this node's NOISE and SIGMAS, the image's latent, the euler sampler; or "
                "edit with FTEdit."),
            inputs=[
                io.Model.Input("model", tooltip="An SD3/SD3.5 model (the authors'), or Flux.1 / Qwen-Image."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is (the "
                                                          "authors invert with it, guidance 1)."),
                io.Int.Input("steps", default=INVERT["steps"], min=3, max=1000,
                             tooltip=f"Steps (authors: {INVERT['steps']}). Sample back with the same (the SIGMAS "
                                     f"output)."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="normal",
                               tooltip="The sigma schedule: SD3's normal is the authors' (diffusers' flow-match Euler, "
                                       "shift 3)."),
                io.Int.Input("iterations", default=INVERT["iterations"], min=0, max=20,
                             tooltip=f"Fixed-point iterations a step (authors: {INVERT['iterations']}, 3 evaluations "
                                     f"a step; 0: one evaluation, Euler with the velocity at the step's far end). More "
                                     f"retrace the image more closely, so the edit keeps more of it."),
                io.Int.Input("average_from", default=INVERT["average_from"], min=0, max=20,
                             tooltip=f"The step is taken with the mean of the velocities of iterations average_from "
                                     f"to average_until - 1 (authors: {INVERT['average_from']} to "
                                     f"{INVERT['average_until']}, i.e. all 3); an empty range takes the last "
                                     f"iteration's."),
                io.Int.Input("average_until", default=INVERT["average_until"], min=0, max=21,
                             tooltip="The end (excluded) of the averaged iterations (authors: "
                                     f"{INVERT['average_until']})."),
            ],
            outputs=flow_inverter_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, iterations, average_from, average_until) -> io.NodeOutput:
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        return io.NodeOutput(*ftedit_invert(cls.NAME, model, latent["samples"], positive, steps, scheduler, iterations,
                                            (average_from, average_until), 1.0))


class FTEdit(io.ComfyNode):
    NAME = "FTEdit"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFTEdit",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "FTEdit's invariance control (Xu et al., CVPR 2025) on SD3/SD3.5 (the authors') or Flux.1 (the "
                "RF-Image-Editing port's blocks: the 19 double-stream ones): the source and the edit sample as "
                "one pair, the source row following the inversion; in every joint block but the last (SD3), the edit's "
                "text features at the words the prompts share are the source's (AdaLN invariance) and, in the first "
                "steps, the edit attends with the source's values. Sample with SamplerCustomAdvanced: this node's "
                "NOISE, MODEL and CONDITIONING (CFGGuider, cfg 2 as the authors, the empty negative), euler, the "
                "inversion's SIGMAS, the image's latent repeated twice; the edit is row 1. Flux: BasicGuider, this "
                "node's guidance."),
            inputs=[
                io.Model.Input("model", tooltip="The SD3/SD3.5 or Flux.1 model the image was inverted with."),
                io.Clip.Input("clip", tooltip="The model's text encoders: the node encodes both prompts and aligns "
                                              "their tokens (CLIP's window and T5's, each on its own)."),
                InversionSocket.Input("inversion", tooltip="FTEdit Invert's inversion (or Flow Invert's, euler) of the "
                                                           "image; the source row follows it."),
                io.String.Input("source_prompt", default="a red circle on a blue background",
                                tooltip="The prompt the image was inverted with."),
                io.String.Input("target_prompt", default="a red square on a blue background",
                                tooltip="The edited prompt: words changed, added or removed; the words it shares with "
                                        "the source keep the source's features."),
                io.Float.Input("adaln_steps", default=EDIT["adaln_steps"], min=0.0, max=1.0, step=0.05,
                               tooltip=f"The fraction of the steps (first int(N x f)) in which the shared words' text "
                                       f"features are the source's (authors' ly_ratio: {EDIT['adaln_steps']:g}). "
                                       f"Higher keeps more of the image; lower lets the whole new prompt act."),
                io.Float.Input("attention_steps", default=EDIT["attention_steps"], min=0.0, max=1.0, step=0.05,
                               tooltip=f"The fraction of the steps (first int(N x f)) in which the edit attends with "
                                       f"the source's values, text and image (authors' attn_ratio: "
                                       f"{EDIT['attention_steps']:g}, 4 of 30; their examples 0 to 0.15). Higher keeps "
                                       f"more of the layout and detail; too much stops the edit."),
                io.Float.Input("guidance", default=EDIT["guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip=f"Flux dev's distilled guidance for both rows (the Flux port: "
                                       f"{EDIT['guidance']:g}); higher pushes the edit harder, but with AdaLN in every "
                                       f"step it soon breaks the picture (the toy flow model: fine at 2, a streak of "
                                       f"the source's and the edit's colours at 3.5, at adaln_steps 0.5 too). Ignored "
                                       f"by SD3 (its CFGGuider's cfg: the authors' 2) and Flux schnell."),
            ],
            outputs=[io.Model.Output(), io.Conditioning.Output(tooltip="The pair: row 0 the source, row 1 the edit."),
                     io.Noise.Output(tooltip="The inversion's noise in both rows (SamplerCustomAdvanced's noise).")],
        )

    @classmethod
    def execute(cls, model, clip, inversion, source_prompt, target_prompt, adaln_steps, attention_steps,
                guidance=EDIT["guidance"]) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion, model=model, methods=(FTEDIT, FLOW_EULER))
        check_finite(cls.NAME, guidance=guidance)
        return io.NodeOutput(*ftedit(cls.NAME, model, clip, inversion, source_prompt, target_prompt, adaln_steps,
                                     attention_steps, guidance))


NODES = [FTEditInvert, FTEdit]
