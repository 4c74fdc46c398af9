"""RF-Inversion (Rout et al. 2025): RF-Inversion Invert, its controlled forward ODE as a flow
inversion, and RF-Inversion, the controlled reverse as a MODEL patch. Math in ``controlled_ode.py``,
host glue in ``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import NodeInputError, check_choice, check_finite, check_made_with
from ...hostkit.flow_inverters import FEWEST_STEPS, InvertedNoise, flow_invert
from ...hostkit.patches import after_cfg
from ...hostkit.run_state import keep_run_state
from ...hostkit.sampling import check_flow_family
from ...hostkit.schemas import SCHEDULERS, flow_inverter_outputs, io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import RF_INVERSION
from . import ROW
from .glue import RFInversionControl, rf_inversion_loop


class RFInversionInvert(io.ComfyNode):
    NAME = "RF-Inversion Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditRFInversionInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "RF-Inversion (Rout et al.): inverts an image with Flux.1, SD3 or Qwen-Image by a controlled forward ODE, the "
                "model's velocity pulled by gamma towards a fixed noise (drawn from the seed). Edit with RF-Inversion "
                "(the controlled reverse) and SamplerCustomAdvanced: this node's NOISE and SIGMAS, the image's latent, "
                "KSamplerSelect euler, the target prompt."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell), SD3/SD3.5 or Qwen-Image model."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The prompt while inverting (the authors' pipeline: empty)."),
                io.Int.Input("steps", default=ROW.settings["InvertEditRFInversionInvert.steps"],
                             min=FEWEST_STEPS["rf-inversion"], max=1000,
                             tooltip="Steps (the authors' pipeline: 28; at least 4: fewer wreck the picture). Sample "
                                     "back with the same."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size)."),
                io.Float.Input("gamma", default=ROW.settings["InvertEditRFInversionInvert.gamma"], min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the inversion is pulled towards the fixed noise (authors: 0.5); 0 "
                                       "is plain Euler inversion."),
                io.Float.Input("guidance", default=ROW.settings["InvertEditRFInversionInvert.guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance while inverting (the authors' pipeline: 0). "
                                       "Ignored by Flux schnell, SD3 and Qwen-Image."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="Seed of the fixed noise the inversion is pulled towards."),
            ],
            outputs=flow_inverter_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, gamma, guidance, seed) -> io.NodeOutput:
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        check_finite(cls.NAME, gamma=gamma, guidance=guidance)
        if not 0.0 <= gamma <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'gamma' is {gamma:g}; give 0 to 1 (authors: 0.5).")
        clues: dict = {}   # filled by the loop: the fixed noise, drawn once on the CPU (as the host draws noise)
        inversion = flow_invert(cls.NAME, RF_INVERSION, model, latent["samples"], positive, steps, scheduler, guidance,
                                rf_inversion_loop(seed, gamma, clues), {"gamma": gamma, "seed": seed}, clues=clues,
                                fewest=FEWEST_STEPS["rf-inversion"])
        return io.NodeOutput(inversion, InvertedNoise(inversion, cls.NAME), inversion.sampling_sigmas)


class RFInversion(io.ComfyNode):
    NAME = "RF-Inversion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditRFInversion",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "RF-Inversion's controlled reverse ODE (Rout et al.) as a patch on the model: in the steps from start "
                "to stop, each prediction is pulled towards the inverted image by eta, so the edit keeps its "
                "structure; after stop the target prompt alone. Sample with SamplerCustomAdvanced, KSamplerSelect "
                "euler, and RF-Inversion Invert's NOISE and SIGMAS with the image's latent."),
            inputs=[
                io.Model.Input("model", tooltip="The model the image was inverted with."),
                InversionSocket.Input("inversion", tooltip="RF-Inversion Invert's (or Flow Invert's) inversion."),
                io.Float.Input("eta", default=ROW.settings["InvertEditRFInversion.eta"], min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the edit is pulled towards the image (the authors' example: 0.9); "
                                       "higher keeps more, lower edits more."),
                io.Float.Input("start", default=ROW.settings["InvertEditRFInversion.start"], min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the steps where the pull starts (authors: 0)."),
                io.Float.Input("stop", default=ROW.settings["InvertEditRFInversion.stop"], min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the steps where it stops (authors: 0.25); later, more editing."),
                io.Float.Input("eta_decay", default=0.0, min=0.0, max=10.0, step=0.1,
                               tooltip="0: a constant eta (authors' default); p > 0: eta times (1 - step/steps)^p (the "
                                       "pipeline's decay_eta with eta_decay_power p)."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, inversion, eta, start, stop, eta_decay) -> io.NodeOutput:
        check_flow_family(model, cls.NAME)
        check_finite(cls.NAME, eta=eta, start=start, stop=stop, eta_decay=eta_decay)
        if stop < start:
            raise NodeInputError(cls.NAME, f"'stop' ({stop:g}) is before 'start' ({start:g}); the pull acts from start "
                                           f"to stop (authors: 0 to 0.25).")
        if stop == start:
            raise NodeInputError(cls.NAME, f"'start' and 'stop' are both {start:g}: the pull toward the image acts on no "
                                           f"step, and the run samples a new picture from the inverted noise; give a "
                                           f"window, stop after start (authors: 0 to 0.25).")
        check_made_with(cls.NAME, inversion.fingerprint, model, "input 'model' is not the model the inversion was made "
                        "with", "Connect the model you inverted with, or invert again with this one.")
        m = model.clone()
        keep_run_state(m)
        after_cfg(m, RFInversionControl(inversion.trajectory[-1], eta, start, stop, eta_decay,
                                                                 cls.NAME))
        return io.NodeOutput(m)


NODES = [RFInversionInvert, RFInversion]
