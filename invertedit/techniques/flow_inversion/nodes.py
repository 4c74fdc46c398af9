"""Inverting images with rectified-flow models (Flux.1, SD3, Qwen-Image): Flow Invert (Euler, RF-Solver,
FireFlow) and the Flow Sampler that samples them back. Math in ``inversion/flow.py``, the inverter's
body in ``hostkit/flow_inverters.py`` (with what registered keepers keep for their editors), the
solvers' loop and SAMPLER in ``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import check_choice, check_finite
from ...hostkit.flow_inverters import FEWEST_STEPS, InvertedNoise, flow_invert
from ...hostkit.keepers import check_keeper_values, keeper_inputs, keeper_values
from ...hostkit.schemas import SCHEDULERS, flow_inverter_outputs, io
from ...inversion import flow as F
from ...inversion.methods import SOLVER_METHODS
from . import ROW
from .glue import flow_sampler, solver_loop

PAPER = ROW.settings_of("InvertEditFlowInvert")


class FlowInvert(io.ComfyNode):
    NAME = "Flow Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFlowInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Inverts an image with a rectified-flow model (Flux.1, SD3, Qwen-Image): integrates the model's velocity from "
                "the image up to noise with Euler, RF-Solver (Wang et al.: second order, 2 evaluations a step) or "
                "FireFlow (Deng et al.: second order at about 1 evaluation a step). Sample back with "
                "SamplerCustomAdvanced: this node's NOISE and SIGMAS, the image's latent as latent_image, the Flow "
                "Sampler with the same solver, the source prompt to reconstruct or another to edit."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell), SD3/SD3.5 or Qwen-Image model."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is."),
                io.Combo.Input("solver", options=list(F.SOLVERS), default="rf-solver",
                               tooltip="euler (the baseline), rf-solver (RF-Solver's second-order step), fireflow "
                                       "(FireFlow's midpoint step reusing the last velocity) or uni-inv (UniEdit-Flow's "
                                       "predictor-corrector, sampled back by Euler; its early stop: the Uni-Inv node). "
                                       "Sample back with the same."),
                io.Int.Input("steps", default=PAPER["steps"], min=FEWEST_STEPS["rf-solver"], max=1000,
                             tooltip=f"Steps (RF-Solver and FireFlow's code: {PAPER['steps']}; at least 2, Euler 3: "
                                     f"fewer wreck the picture). Sample back with the same."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size "
                                       "is the authors'; SD3: normal; Qwen-Image: simple, after ModelSamplingAuraFlow "
                                       "where the workflow sets its shift)."),
                io.Float.Input("guidance", default=PAPER["guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip=f"Flux dev's distilled guidance while inverting (RF-Solver and FireFlow's code: "
                                       f"{PAPER['guidance']:g}). "
                                       "Ignored by Flux schnell, SD3 and Qwen-Image (inverted without guidance)."),
                *keeper_inputs(),   # what the registered keepers keep for their editors (hostkit/keepers.py)
            ],
            outputs=flow_inverter_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, solver, steps, scheduler, guidance, **keep) -> io.NodeOutput:
        check_choice(cls.NAME, "solver", solver, F.SOLVERS)
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        keep = keeper_values(keep)
        check_keeper_values(cls.NAME, keep)
        check_finite(cls.NAME, guidance=guidance)
        inversion = flow_invert(cls.NAME, SOLVER_METHODS[solver], model, latent["samples"], positive, steps, scheduler,
                                guidance, solver_loop(solver), {"solver": solver}, keep=keep, fewest=FEWEST_STEPS[solver], references=True)
        return io.NodeOutput(inversion, InvertedNoise(inversion, cls.NAME), inversion.sampling_sigmas)


class FlowSampler(io.ComfyNode):
    NAME = "Flow Sampler"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFlowSampler",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "A SAMPLER for SamplerCustomAdvanced with the flow solvers of the inversion papers: euler, "
                "rf-solver (RF-Solver, 2 evaluations a step) or fireflow (FireFlow, 1 a step after the first). Sample "
                "a Flow Invert inversion back with the solver it was made with."),
            inputs=[io.Combo.Input("solver", options=list(F.SOLVERS), default="rf-solver",
                                   tooltip="The solver the inversion was made with (Flow Invert's solver).")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, solver) -> io.NodeOutput:
        check_choice(cls.NAME, "solver", solver, F.SOLVERS)
        return io.NodeOutput(flow_sampler(solver))


NODES = [FlowInvert, FlowSampler]
