"""Fixed-Point Invert: DDIM inversion whose every step solves the implicit DDIM equation by
iterating it (ReNoise, Garibi et al. 2024; Fixed-Point Inversion, Meiri et al.; AIDI, Pan et al.
with Anderson acceleration). The math is in ``iteration.py``."""
from __future__ import annotations

import torch
from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_at_least
from ...hostkit.inverters import invert, inverted_latent
from ...hostkit.schemas import inverter_inputs, inverter_outputs
from ...inversion.methods import FIXED_POINT
from . import ROW
from .iteration import (AVERAGE, ITERATIONS, LOW_NOISE_ESTIMATES, LOW_NOISE_TIMESTEP,
                        fixed_point_invert, model_evaluations)


class FixedPointInvert(io.ComfyNode):
    NAME = FIXED_POINT.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFixedPointInvert",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=(
                "DDIM inversion that re-evaluates the model at its estimate of the next latent and iterates, so each "
                "step is the exact inverse of the sampler's step (ReNoise, Garibi et al.; fixed-point inversion, "
                "Meiri et al.; AIDI, Pan et al.): a faithful inversion in few steps. Costs iterations + 1 model "
                "evaluations a step (ReNoise: 10, and 5 at the steps below timestep 250); the INVERSION's settings "
                "record the total. Sample as after DDIM Invert: KSamplerAdvanced with add_noise disable, the same "
                "steps, scheduler and start_at_step, sampler ddim or euler, and the cfg it was inverted at."),
            inputs=inverter_inputs(
                steps=ROW.settings["InvertEditFixedPointInvert.steps"], start_at_step=0, cfg=1.0, paper="ReNoise's code",
                start_tooltip="0 inverts all the way to noise (ReNoise: 0, strength 1). k > 0 stops k steps short of "
                              "it. Use the same start_at_step in KSamplerAdvanced.",
                cfg_tooltip="Guidance while inverting (ReNoise: none, i.e. 1); other values need 'negative'. Each "
                            "step is solved for the guided prediction, so at moderate guidance (about 3) inverting at "
                            "the cfg you sample at reconstructs at that cfg; at high guidance (7.5) the iteration does "
                            "not converge: invert at 1.") + [
                io.Int.Input("iterations", default=ITERATIONS, min=0, max=100,
                             tooltip=f"Re-evaluations of the model per step after the first (plain DDIM) one "
                                     f"(ReNoise: {ITERATIONS}, i.e. {ITERATIONS + 1} evaluations a step). 0 is DDIM "
                                     f"Invert exactly."),
                io.Int.Input("average", default=AVERAGE, min=1, max=101,
                             tooltip=f"The step uses the mean of the last this-many noise estimates (ReNoise: "
                                     f"{AVERAGE}, its estimates 9 and 10); 1: the last fixed-point iterate alone. At "
                                     f"most iterations + 1."),
                io.Boolean.Input("low_noise_rule", default=True,
                                 tooltip=f"ReNoise's rule for the least noisy steps (timestep below "
                                         f"{LOW_NOISE_TIMESTEP}): at most {LOW_NOISE_ESTIMATES} estimates, all "
                                         f"averaged (ReNoise: on)."),
                io.Int.Input("anderson", default=0, min=0, max=10,
                             tooltip="Anderson acceleration of the iteration with this many past iterates (AIDI, "
                                     "Pan et al.); 0: plain iteration (ReNoise's, the default)."),
            ],
            outputs=inverter_outputs(
                "The inverted latent: feed it to KSamplerAdvanced with add_noise disabled.",
                "The schedule from the inverted latent back to the image, for SamplerCustomAdvanced (with DisableNoise)."),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, iterations, average,
                low_noise_rule, anderson, negative=None) -> io.NodeOutput:
        check_at_least(cls.NAME, 0, iterations=iterations, anderson=anderson)
        check_at_least(cls.NAME, 1, average=average)
        if average > iterations + 1:
            raise NodeInputError(cls.NAME, f"input 'average' is {average}, but iterations {iterations} make only "
                                           f"{iterations + 1} noise estimates a step; give average 1 to "
                                           f"{iterations + 1}, or more iterations (ReNoise: iterations {ITERATIONS}, "
                                           f"average {AVERAGE}).")
        low = (float(model.get_model_object("model_sampling").sigma(torch.tensor(float(LOW_NOISE_TIMESTEP))))
               if low_noise_rule else None)
        settings = {"iterations": iterations, "average": average, "anderson": anderson,
                    "low_noise_timestep": LOW_NOISE_TIMESTEP if low_noise_rule else None}
        inversion = invert(FIXED_POINT, fixed_point_invert, model, latent["samples"], positive, negative, steps,
                           scheduler, start_at_step, cfg, settings=settings, iterations=iterations, average=average,
                           anderson=anderson, low_noise_sigma=low)
        inversion.settings["model_evaluations"] = model_evaluations(inversion.sampling_sigmas, iterations, low)
        return io.NodeOutput(inversion, inverted_latent(inversion), inversion.sampling_sigmas)


NODES = [FixedPointInvert]
