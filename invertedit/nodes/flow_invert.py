"""Inverting images with rectified-flow models (Flux.1, SD3): Flow Invert (Euler, RF-Solver,
FireFlow), the Flow Sampler that samples them back, and RF-Inversion (Rout et al.): its controlled
inversion and the controlled reverse as a MODEL patch. Math in ``inversion/flow.py``, host glue in
``hostkit/flow_inversion.py``."""
from __future__ import annotations

import torch

from ..hostkit.errors import NodeInputError, check_choice, check_finite, check_inversion, check_made_with
from ..hostkit.flow_inversion import (FLOW_Y1, SHARE_PLACES, InvertedNoise, RFInversionControl, Sharing, flow_invert,
                                      flow_sampler, share_values, solver_loop)
from ..hostkit.kv_edit import KeepKV
from ..hostkit.run_state import keep_run_state
from ..hostkit.sampling import check_flow_family
from ..hostkit.schemas import SCHEDULERS, io
from ..hostkit.sockets import Inversion as InversionSocket
from ..inversion import flow as F
from ..inversion.methods import FIREFLOW, FLOW_EULER, RF_INVERSION, RF_SOLVER

SOLVER_METHODS = {"euler": FLOW_EULER, "rf-solver": RF_SOLVER, "fireflow": FIREFLOW}


def _outputs() -> list:
    return [InversionSocket.Output(tooltip="The inversion: schedule, trajectory and fingerprint (Save Inversion keeps it)."),
            io.Noise.Output(tooltip="The inverted noise: SamplerCustomAdvanced's noise, with the image's latent as its "
                                    "latent_image, starts the run at the inversion."),
            io.Sigmas.Output(tooltip="The schedule to sample back with (SamplerCustomAdvanced's sigmas).")]


class FlowInvert(io.ComfyNode):
    NAME = "Flow Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFlowInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Inverts an image with a rectified-flow model (Flux.1, SD3): integrates the model's velocity from "
                "the image up to noise with Euler, RF-Solver (Wang et al.: second order, 2 evaluations a step) or "
                "FireFlow (Deng et al.: second order at about 1 evaluation a step). Sample back with "
                "SamplerCustomAdvanced: this node's NOISE and SIGMAS, the image's latent as latent_image, the Flow "
                "Sampler with the same solver, the source prompt to reconstruct or another to edit."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell) or SD3/SD3.5 model."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is."),
                io.Combo.Input("solver", options=list(F.SOLVERS), default="rf-solver",
                               tooltip="euler (the baseline), rf-solver (RF-Solver's second-order step) or fireflow "
                                       "(FireFlow's midpoint step reusing the last velocity). Sample back with the same."),
                io.Int.Input("steps", default=25, min=1, max=1000,
                             tooltip="Steps (RF-Solver and FireFlow's code: 25). Sample back with the same."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size "
                                       "is the authors'; SD3: normal)."),
                io.Float.Input("guidance", default=1.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance while inverting (RF-Solver and FireFlow's code: 1). "
                                       "Ignored by Flux schnell and SD3 (inverted without guidance)."),
                io.Int.Input("share_steps", default=0, min=0, max=1000, optional=True,
                             tooltip="RF-Solver-Edit's feature sharing (Flux): keep the attention values of the single "
                                     "blocks for the first N sampling steps, for Share Values to reuse while editing "
                                     "(authors' code: 20 of 25 steps; their examples 2 to 5). 0: keep none. Memory: "
                                     "about 1 GB per step per megapixel in bfloat16 (18 blocks, 2 evaluations a step "
                                     "with rf-solver)."),
                io.Int.Input("share_from_block", default=20, min=0, max=1000, optional=True,
                             tooltip="The first single block whose values are kept (authors: 20, i.e. blocks 20 to 37 "
                                     "of Flux's 38)."),
                io.Combo.Input("keep_values_on", options=list(SHARE_PLACES), default="device", optional=True,
                               tooltip="Where the kept values (and KV-Edit's keys and values) wait: device (the "
                                       "model's: no copies) or cpu (the authors' code: saves GPU memory, costs a copy "
                                       "and a wait per block call)."),
                io.Boolean.Input("keep_keys_values", default=False, optional=True,
                                 tooltip="KV-Edit (Flux, solver euler): keep every block's image keys and values at "
                                         "every step, for the KV-Edit node. Memory: about 2.9 GB per step per "
                                         "megapixel in bfloat16 (57 blocks; computed): choose keep_values_on cpu "
                                         "on a consumer GPU, as the authors' code offloads."),
                io.Mask.Input("kv_mask", optional=True,
                              tooltip="KV-Edit's attn_mask option (authors: off): while inverting, the masked region "
                                      "and the background do not attend to each other. Give KV-Edit the same mask."),
            ],
            outputs=_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, solver, steps, scheduler, guidance, share_steps=0, share_from_block=20,
                keep_values_on="device", keep_keys_values=False, kv_mask=None) -> io.NodeOutput:
        check_choice(cls.NAME, "solver", solver, F.SOLVERS)
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        check_choice(cls.NAME, "keep_values_on", keep_values_on, SHARE_PLACES)
        if kv_mask is not None and not keep_keys_values:
            raise NodeInputError(cls.NAME, "input 'kv_mask' is connected but keep_keys_values is off; the mask is "
                                           "KV-Edit's attention mask while keeping keys and values: turn it on, or "
                                           "disconnect the mask.")
        check_finite(cls.NAME, guidance=guidance)
        inversion = flow_invert(cls.NAME, SOLVER_METHODS[solver], model, latent["samples"], positive, steps, scheduler,
                                guidance, solver_loop(solver), {"solver": solver},
                                sharing=Sharing(share_steps, share_from_block, keep_values_on),
                                kv=KeepKV(keep_values_on, kv_mask) if keep_keys_values else None)
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


class RFInversionInvert(io.ComfyNode):
    NAME = "RF-Inversion Invert"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditRFInversionInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "RF-Inversion (Rout et al.): inverts an image with Flux.1 or SD3 by a controlled forward ODE, the "
                "model's velocity pulled by gamma towards a fixed noise (drawn from the seed). Edit with RF-Inversion "
                "(the controlled reverse) and SamplerCustomAdvanced: this node's NOISE and SIGMAS, the image's latent, "
                "KSamplerSelect euler, the target prompt."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell) or SD3/SD3.5 model."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The prompt while inverting (the authors' pipeline: empty)."),
                io.Int.Input("steps", default=28, min=1, max=1000,
                             tooltip="Steps (the authors' pipeline: 28). Sample back with the same."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="simple",
                               tooltip="The sigma schedule (Flux: simple after ModelSamplingFlux at the image's size)."),
                io.Float.Input("gamma", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the inversion is pulled towards the fixed noise (authors: 0.5); 0 "
                                       "is plain Euler inversion."),
                io.Float.Input("guidance", default=0.0, min=0.0, max=100.0, step=0.1,
                               tooltip="Flux dev's distilled guidance while inverting (the authors' pipeline: 0)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="Seed of the fixed noise the inversion is pulled towards."),
            ],
            outputs=_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, gamma, guidance, seed) -> io.NodeOutput:
        check_choice(cls.NAME, "scheduler", scheduler, SCHEDULERS)
        check_finite(cls.NAME, gamma=gamma, guidance=guidance)
        if not 0.0 <= gamma <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'gamma' is {gamma:g}; give 0 to 1 (authors: 0.5).")
        clues: dict = {}   # filled by the loop: the fixed noise, drawn once on the CPU (as the host draws noise)

        def loop(velocity, x, sigmas, callback):
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
            y1 = torch.randn(x.shape, generator=generator, dtype=torch.float32)   # sampling-path-ok: once per inversion
            clues[FLOW_Y1] = y1.to(x)
            return F.rf_invert(velocity, x, sigmas, gamma, clues[FLOW_Y1], callback)

        inversion = flow_invert(cls.NAME, RF_INVERSION, model, latent["samples"], positive, steps, scheduler, guidance,
                                loop, {"gamma": gamma, "seed": seed}, clues=clues)
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
                io.Float.Input("eta", default=0.9, min=0.0, max=1.0, step=0.01,
                               tooltip="How strongly the edit is pulled towards the image (the authors' example: 0.9); "
                                       "higher keeps more, lower edits more."),
                io.Float.Input("start", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the steps where the pull starts (authors: 0)."),
                io.Float.Input("stop", default=0.25, min=0.0, max=1.0, step=0.01,
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
        check_made_with(cls.NAME, inversion.fingerprint, model, "input 'model' is not the model the inversion was made "
                        "with", "Connect the model you inverted with, or invert again with this one.")
        m = model.clone()
        keep_run_state(m)
        m.set_model_sampler_post_cfg_function(RFInversionControl(inversion.trajectory[-1], eta, start, stop, eta_decay,
                                                                 cls.NAME))
        return io.NodeOutput(m)


class ShareValues(io.ComfyNode):
    NAME = "Share Values"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditShareValues",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "RF-Solver-Edit's feature sharing (Wang et al.) as a patch on a Flux model: in the steps the inversion "
                "kept values for (Flow Invert's share_steps), the last single blocks attend with the source's values, "
                "so the edit keeps the image's layout and details. Sample as for Flow Invert: SamplerCustomAdvanced, "
                "its NOISE and SIGMAS, the Flow Sampler with the same solver, the target prompt."),
            inputs=[
                io.Model.Input("model", tooltip="The Flux model the image was inverted with."),
                InversionSocket.Input("inversion", tooltip="Flow Invert's inversion, made with share_steps above 0."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, inversion) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion, model=model, methods=tuple(SOLVER_METHODS.values()))
        return io.NodeOutput(share_values(cls.NAME, model, inversion))


NODES = [FlowInvert, FlowSampler, RFInversionInvert, RFInversion, ShareValues]
