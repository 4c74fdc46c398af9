"""DDIM Invert: a real image's latent to the noise latent that reconstructs it. Apply Inversion: a
MODEL that checks each sampling run can honour an inversion.

The inverted latent alone goes into the host's stock samplers. Patched with the INVERSION,
the model refuses, with a message saying what would work, a run that cannot reconstruct:
another model, another schedule (steps, scheduler, start step), another latent size, noise
added to the inverted latent, or a stochastic (ancestral/SDE) sampler. Inversion methods
apply their clues from here: a negative-prompt inversion's source prompt as the negative
conditioning, a null-text inversion's per-step null embeddings in the unconditional rows, a
direct inversion's trajectory correction of the source rows.
"""
from __future__ import annotations

from ...hostkit.errors import check_inversion
from ...hostkit.inversion_patches import SAMPLING_PATCHES, InversionGuard, checked_method
from ...hostkit.inverters import invert, inverted_latent
from ...hostkit.keys import INVERSION_KEY
from ...hostkit.patches import wrap_runs
from ...hostkit.schemas import inverter_inputs, inverter_outputs, io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.ddim import ddim_invert
from ...inversion.methods import DDIM
from . import ROW


class DDIMInvert(io.ComfyNode):
    NAME = DDIM.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDDIMInvert",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=(
                "Runs deterministic DDIM backwards, from the image's latent to noise, with the source prompt. "
                "Sampling the inverted LATENT with KSamplerAdvanced (add_noise disable, the same steps, scheduler "
                "and start_at_step, sampler ddim or euler) gives the image back; change the prompt to edit it."),
            inputs=inverter_inputs(
                steps=ROW.settings["InvertEditDDIMInvert.steps"], start_at_step=0, cfg=ROW.settings["InvertEditDDIMInvert.cfg"],
                paper="papers",
                start_tooltip="0 inverts all the way to noise. k > 0 stops k steps short of it (partial inversion: "
                              "edits change less). Use the same start_at_step in KSamplerAdvanced.",
                cfg_tooltip="Guidance during inversion (papers: 1, i.e. none). Other values need 'negative'."),
            outputs=inverter_outputs(
                "The inverted latent: feed it to KSamplerAdvanced with add_noise disabled.",
                "The schedule from the inverted latent back to the image, for SamplerCustomAdvanced (with DisableNoise)."),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, negative=None) -> io.NodeOutput:
        inversion = invert(DDIM, ddim_invert, model, latent["samples"], positive, negative, steps, scheduler,
                           start_at_step, cfg)
        return io.NodeOutput(inversion, inverted_latent(inversion), inversion.sampling_sigmas)


class ApplyInversion(io.ComfyNode):
    NAME = "Apply Inversion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditApplyInversion",
            display_name=cls.NAME,
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
        check_inversion(ApplyInversion.NAME, inversion, model=model)
        method = checked_method(inversion, ApplyInversion.NAME)
        m = model.clone()
        wrap_runs(m, INVERSION_KEY, InversionGuard(inversion))
        SAMPLING_PATCHES[method.patch](m, inversion)
        return io.NodeOutput(m)


NODES = [DDIMInvert, ApplyInversion]
