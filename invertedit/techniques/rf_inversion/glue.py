"""RF-Inversion inside the host (math in ``controlled_ode.py``): the controlled forward ODE's loop for
the flow inverter, with the fixed noise it pulls towards among the record's clues, and the
controlled reverse as a post-CFG function on a cloned model."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...hostkit.errors import NodeInputError
from ...hostkit.run_state import run_state
from ...hostkit.steps import step_at
from .controlled_ode import eta_at, rf_controlled, rf_invert

FLOW_Y1 = "rf.y1"   # RF-Inversion's target noise (a clue of its record)


@dataclass
class ControlRun:
    """A run of ``RFInversionControl``: the inverted image's latent on the sampled latents' device."""
    y0: torch.Tensor | None = None


class RFInversionControl:
    """sampler_post_cfg_function: RF-Inversion's controlled reverse ODE (``controlled_ode.py``'s
    ``rf_controlled``): the denoised prediction pulled towards the source ``y0`` by the step's eta."""

    def __init__(self, y0: torch.Tensor, eta: float, start: float, stop: float, decay: float, node: str):
        self.y0, self.eta, self.start, self.stop, self.decay, self.node = y0, eta, start, stop, decay, node

    def __call__(self, args: dict) -> torch.Tensor:
        denoised = args["denoised"]
        options = args["model_options"]["transformer_options"]
        step, steps = step_at(options["sample_sigmas"], args["sigma"])
        eta = eta_at(step, steps, self.eta, self.start, self.stop, self.decay)
        if eta == 0:
            return denoised
        run: ControlRun = run_state(options, self, ControlRun, self.node)
        if run.y0 is None:   # once per run, on the latent's device and dtype
            run.y0 = self.y0.to(denoised)
        y0 = run.y0
        if y0.shape != denoised.shape:
            raise NodeInputError(self.node, f"the latent being sampled is {tuple(denoised.shape)}, the inverted image's "
                                            f"{tuple(y0.shape)}; sample the inversion's NOISE with the image's latent.")
        return rf_controlled(denoised, y0, eta)


def rf_inversion_loop(seed: int, gamma: float, clues: dict):
    """The flow inverter's loop of RF-Inversion Invert: the controlled forward ODE towards a fixed
    noise drawn from ``seed`` (once per inversion, on the CPU as the host draws noise), which goes
    into ``clues`` (``FLOW_Y1``)."""
    def loop(velocity, x, sigmas, callback):
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        y1 = torch.randn(x.shape, generator=generator, dtype=torch.float32)   # sampling-path-ok: once per inversion
        clues[FLOW_Y1] = y1.to(x)
        return rf_invert(velocity, x, sigmas, gamma, clues[FLOW_Y1], callback)
    return loop
