"""UniEdit-Flow's nodes: Uni-Inv (the inversion, stopped early at alpha of the schedule) and UniEdit-Flow (Uni-Edit's
GUIDER for SamplerCustomAdvanced with the host's Euler sampler). Math in ``fusion.py`` and ``inversion/flow.py``
(``uni_inv``), host glue in ``glue.py``; the inverter's body is ``hostkit/flow_inverters.py``'s ``flow_invert``."""
from __future__ import annotations

import math

from ...hostkit.errors import NodeInputError, check_bounds, check_choice, check_conditioning, check_finite
from ...hostkit.flow_inverters import InvertedNoise, flow_invert
from ...hostkit.sampling import check_flow_family, check_plain_prompt
from ...hostkit.schemas import SCHEDULERS, flow_inverter_outputs, io
from ...inversion.methods import SOLVER_METHODS
from . import ROW
from . import fusion as F
from .glue import NAME, uni_edit_guider, uni_inv_loop

INV = ROW.settings_of("InvertEditUniInv")
EDIT = ROW.settings_of("InvertEditUniEditFlow")


class UniInv(io.ComfyNode):
    NAME = "Uni-Inv"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditUniInv",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "UniEdit-Flow's inversion (Jiao et al., ICLR'26): integrates a rectified-flow model (Flux.1, SD3) "
                "from the image towards noise with a predictor-corrector step whose velocity, taken at the step's "
                "predicted end, corrects the step and predicts the next (one evaluation a step plus one), so the "
                "host's Euler step retraces it. It stops early, at alpha of the schedule: the edit starts there. "
                "Connect NOISE and SIGMAS to SamplerCustomAdvanced with the UniEdit-Flow guider (or any guider, "
                "KSamplerSelect euler) and the image's latent as latent_image."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell) or SD3/SD3.5 model."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The prompt to invert with: the authors' code inverts with "
                                                          "the empty prompt (\"\")."),
                io.Int.Input("steps", default=INV["steps"], min=2, max=1000,
                             tooltip=f"Steps of the whole schedule (paper: {INV['steps']}; the authors recommend 8 to "
                                     f"30); the inversion and the edit run the last floor(alpha x steps) of them."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size, "
                                       "the authors' shifted schedule; SD3: normal)."),
                io.Float.Input("guidance", default=INV["guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip=f"Flux dev's distilled guidance while inverting (paper: {INV['guidance']:g}). "
                                       "Ignored by Flux schnell and SD3 (inverted without guidance, as the authors)."),
                io.Float.Input("alpha", default=INV["alpha"], min=0.01, max=1.0, step=0.05, round=0.01,
                               tooltip=f"The delay rate (paper: {INV['alpha']:g}; recommended 0.6 to 0.8): invert only "
                                       "the last floor(alpha x steps) steps of the schedule (up to sigma about alpha) "
                                       "and edit from there. Lower keeps more of the image's layout and detail; "
                                       "higher lets the edit change more (1: from pure noise). Measured on the toy "
                                       "flow world (16 cases, omega 5): alpha 0.4 / 0.6 / 0.8 edit 12 / 38 / 44% of "
                                       "the cases, background 31.9 / 29.5 / 25.0 dB to the reconstruction."),
                io.Boolean.Input("zero_initial", default=INV["zero_initial"],
                                 tooltip="Take the first velocity as zero (the authors' zero_initial; paper: off): "
                                         "one model evaluation fewer, the image's own velocity at t = 0 never taken."),
            ],
            outputs=flow_inverter_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, guidance, alpha, zero_initial) -> io.NodeOutput:
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        check_finite(cls.NAME, guidance=guidance, alpha=alpha)
        check_bounds(cls, alpha=alpha)
        if math.floor(alpha * steps) < 1:
            raise NodeInputError(cls.NAME, f"alpha {alpha:g} of {steps} steps inverts floor({alpha:g} x {steps}) = 0 "
                                           f"steps; raise alpha or the steps so that alpha x steps is at least 1 "
                                           f"(paper: alpha {INV['alpha']:g} of {INV['steps']} steps, 9 steps).")
        start = F.start_step(alpha, steps)
        inversion = flow_invert(cls.NAME, SOLVER_METHODS["uni-inv"], model, latent["samples"], positive, steps,
                                scheduler, guidance, uni_inv_loop(zero_initial),
                                {"solver": "uni-inv", "alpha": alpha, "zero_initial": bool(zero_initial)},
                                fewest=2, start_step=start)
        return io.NodeOutput(inversion, InvertedNoise(inversion, cls.NAME), inversion.sampling_sigmas)


class UniEditFlow(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditUniEditFlow",
            display_name=NAME,
            category="InvertEdit/flow",
            description=(
                "UniEdit-Flow's edit (Uni-Edit, Jiao et al., ICLR'26), a GUIDER for SamplerCustomAdvanced: at each "
                "step the source and target prompts' velocities (one batched model call) are fused by a mask of "
                "their difference (its channel mean, min-max normalised per image): the target's where they differ "
                "most, the source's where they agree, plus omega times the difference (more where they differ). "
                "Run it from Uni-Inv's NOISE and SIGMAS (the edit starts where the inversion stopped, at alpha) with "
                "KSamplerSelect euler and the image's latent as latent_image. Authors' settings (Flux and SD3): 15 "
                "steps, alpha 0.6, omega 5, guidance 1 (SD3 without classifier-free guidance)."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell) or SD3/SD3.5 model: the one Uni-Inv inverted "
                                                "with."),
                io.Conditioning.Input("source", tooltip="The source prompt: a caption of the image as it is."),
                io.Conditioning.Input("target", tooltip="The target prompt: the caption of the edited image."),
                io.Float.Input("omega", default=EDIT["omega"], min=0.0, max=100.0, step=0.5, round=0.01,
                               tooltip=f"The edit's strength (paper: {EDIT['omega']:g}): the step adds omega x (1 + "
                                       "mask) times the target's minus the source's velocity. Higher edits more; "
                                       "lower keeps more of the image (0: the fused velocity alone). Measured on the "
                                       "toy flow world (16 cases, alpha 0.6): omega 0 / 2.5 / 5 / 8 edit 0 / 12 / 38 / "
                                       "38% of the cases, background 35.6 / 32.1 / 29.5 / 27.1 dB to the "
                                       "reconstruction."),
                io.Float.Input("guidance", default=EDIT["guidance"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip=f"Flux dev's distilled guidance of both prompts (paper: {EDIT['guidance']:g}; "
                                       "the authors suggest 1 to 2), or SD3's classifier-free guidance scale with "
                                       "'negative' connected (the authors' SD3 runs: 1, no negative). Flux schnell "
                                       "takes none."),
                io.Combo.Input("mask", options=list(F.MASKS), default="mean",
                               tooltip="The mask of the prompts' difference: mean (its signed channel mean, the "
                                       "authors' diffusers code: Flux, SD3) or abs mean (the mean of its absolute "
                                       "value, the authors' BFL-Flux code; on the toy flow world it kept more, "
                                       "30.2 against 29.5 dB, at the same 38% of edits)."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="SD3 only: a negative prompt (usually empty) for classifier-free guidance "
                                              "of each prompt at 'guidance' (not in the authors' runs). Flux takes "
                                              "none."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, source, target, omega, guidance, mask, negative=None) -> io.NodeOutput:
        family = check_flow_family(model, NAME)
        check_finite(NAME, omega=omega, guidance=guidance)
        check_bounds(cls, omega=omega, guidance=guidance)
        check_choice(NAME, "mask", mask, F.MASKS)
        for name, conditioning in (("source", source), ("target", target), ("negative", negative)):
            if conditioning is not None:
                check_conditioning(NAME, name, conditioning, model)
                check_plain_prompt(NAME, name, conditioning)
        flux = family.layout == "dit-double-single"
        if flux and negative is not None:
            raise NodeInputError(NAME, "input 'negative' is connected, but Flux takes no negative prompt (its guidance "
                                       "is distilled: 'guidance'); disconnect it.")
        if not flux and not family.distilled_guidance and negative is None and guidance != 1.0:
            raise NodeInputError(NAME, f"guidance is {guidance:g}, but without a negative prompt this model runs "
                                       f"without classifier-free guidance (the authors' SD3 runs: guidance 1): set "
                                       f"guidance to 1, or connect 'negative' (an empty prompt) to guide each prompt.")
        packed = flux or family.config_name == "QwenImage"   # the pipelines that pack 2x2 tokens (the mask's cells)
        guider = uni_edit_guider(model, source, target, negative, omega, mask, guidance,
                                 distilled=family.distilled_guidance, packed=packed)
        return io.NodeOutput(guider)


NODES = [UniInv, UniEditFlow]
