"""Apply Inversion: a MODEL that checks each sampling run can honour an inversion.

The inverted latent alone goes into the host's stock samplers. Patched with the INVERSION,
the model refuses, with a message saying what would work, a run that cannot reconstruct:
another model, another schedule (steps, scheduler, start step), another latent size, noise
added to the inverted latent, or a stochastic (ancestral/SDE) sampler. Later inversion
methods apply their per-step clues from the same place.
"""
from __future__ import annotations

import logging

import comfy.patcher_extension
import torch
from comfy_api.latest import io

from ..inversion.record import Inversion, InversionMismatch
from .fingerprint import model_fingerprint
from .host_sampling import NodeInputError
from .sockets import Inversion as InversionSocket

NAME = "Apply Inversion"
WRAPPER_KEY = "invertedit_inversion"

# Samplers that add fresh noise at every step: they cannot retrace a deterministic inversion.
_STOCHASTIC = ("ancestral", "sde", "ddpm", "lcm", "seeds", "sa_solver", "restart")
_EXACT = ("sample_euler",)   # the host's ddim and euler samplers: the inversion's own step


def sampler_name(sampler) -> str:
    fn = getattr(sampler, "sampler_function", None)
    return getattr(fn, "__name__", type(sampler).__name__)


def check_run(inversion: Inversion, model, noise: torch.Tensor, latent: torch.Tensor, sampler,
              sigmas: torch.Tensor, node: str = NAME) -> int:
    """Raise NodeInputError unless this sampling run can reconstruct from ``inversion``.
    Returns the step of the inversion's schedule the run starts at."""
    actual = {f"model.{k}": v for k, v in model_fingerprint(model).items()}
    differ = inversion.check_fingerprint(actual, ["model.family", "model.prediction", "model.schedule", "model.weights"])
    if differ:
        raise NodeInputError(node, (
            f"the MODEL being sampled is not the one the inversion was made with ({', '.join(differ)} differ: "
            f"{inversion.fingerprint.get(differ[0])} vs {actual.get(differ[0])}). Sample with the model you inverted "
            f"with, or invert again with this one."))
    if inversion.check_fingerprint(actual, ["model.patches"]):
        logging.warning("%s: the model's weight patches (LoRA) differ from those the inversion was made with; "
                        "the reconstruction will not be exact.", node)
    name = sampler_name(sampler)
    if any(s in name for s in _STOCHASTIC):
        raise NodeInputError(node, (
            f"sampler '{name.removeprefix('sample_')}' adds fresh noise at every step and cannot retrace an inversion; "
            f"use ddim or euler (or another deterministic sampler)."))
    if name not in _EXACT:
        logging.info("%s: sampler '%s' is deterministic but steps differently from DDIM; reconstruction is approximate "
                     "(ddim or euler retrace the inversion).", node, name)
    if torch.count_nonzero(noise) > 0:
        raise NodeInputError(node, (
            "the sampler adds noise to the inverted latent. Set add_noise to 'disable' in KSamplerAdvanced, or use "
            "DisableNoise with SamplerCustomAdvanced (KSampler always adds noise: use KSamplerAdvanced)."))
    try:
        inversion.check_latent(tuple(latent.shape))
        return inversion.locate(sigmas)
    except InversionMismatch as e:
        raise NodeInputError(node, str(e)) from None


class InversionGuard:
    """OUTER_SAMPLE wrapper holding the inversion; checks each run before it starts."""

    def __init__(self, inversion: Inversion):
        self.inversion = inversion

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        check_run(self.inversion, guider.model_patcher, noise, latent_image, sampler, sigmas)
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)


class ApplyInversion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditApplyInversion",
            display_name=NAME,
            category="InvertEdit/inversion",
            description=(
                "Patches the MODEL with an INVERSION: each sampling run is checked against it (same model, steps, "
                "scheduler, start step and latent size; no added noise; a deterministic sampler) and refused with a "
                "clear message otherwise. The input MODEL is not changed."),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with: the one the inversion was made with."),
                InversionSocket.Input("inversion", tooltip="From DDIM Invert or Load Inversion."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model carrying the inversion.")],
        )

    @classmethod
    def execute(cls, model, inversion) -> io.NodeOutput:
        m = model.clone()
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, InversionGuard(inversion))
        return io.NodeOutput(m)


NODES = [ApplyInversion]
