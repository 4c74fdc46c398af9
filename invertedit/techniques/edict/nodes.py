"""EDICT Invert / EDICT Sampler: exact inversion with two coupled sequences (Wallace et al.).

EDICT Invert records both sequences' inverted latents; the EDICT Sampler (a SAMPLER for the
stock SamplerCustomAdvanced, with DisableNoise) runs the coupled denoising from them, so the
source comes back to float round-off at the inversion's guidance scale (the paper: cfg 3,
mixing 0.93). Two UNet calls a step.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_finite
from ...hostkit.inversion_sampler import InversionSamplerNode, InversionSampling
from ...hostkit.inverters import invert, inverted_latent
from ...hostkit.schemas import inverter_inputs, inverter_outputs
from ...inversion.methods import EDICT
from . import ROW
from .coupled import edict_invert, edict_sample


class EdictInvert(io.ComfyNode):
    NAME = EDICT.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditEDICTInvert",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Exact inversion (EDICT, Wallace et al.): two coupled latent sequences that can be run "
                         "backwards without error. Sample with SamplerCustomAdvanced + DisableNoise + the EDICT "
                         "Sampler node and the SIGMAS output, at the same cfg: the image comes back exactly."),
            inputs=inverter_inputs(
                steps=50, start_at_step=10, cfg=3.0, paper="paper",
                start_tooltip="Partial inversion: skip this many of the noisiest steps (paper: strength 0.8, i.e. 10 of "
                              "50).",
                cfg_tooltip="Guidance while inverting (paper: 3). Sample at the same cfg for an exact reconstruction.") + [
                io.Float.Input("mixing", default=ROW.settings["InvertEditEDICTInvert.mixing"], min=0.5, max=0.999, step=0.001,
                               tooltip="Mixing weight p of the coupled sequences (paper: 0.93)."),
            ],
            outputs=inverter_outputs("The inverted latent of the first sequence.",
                                     "The schedule back to the image, for SamplerCustomAdvanced."),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, mixing, negative=None) -> io.NodeOutput:
        check_finite(cls.NAME, mixing=mixing)
        if not 0.0 < mixing <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'mixing' is {mixing}; give a weight above 0, up to 1 (paper: 0.93).")
        inversion = invert(EDICT, edict_invert, model, latent["samples"], positive, negative, steps, scheduler,
                           start_at_step, cfg, settings={"mixing": mixing}, p=mixing)
        return io.NodeOutput(inversion, inverted_latent(inversion), inversion.sampling_sigmas)


class EdictSampling(InversionSampling):
    """The sampler function of an EDICT inversion (k-diffusion signature)."""

    NAME = "EDICT Sampler"
    METHOD = EDICT
    SAME_CFG = True   # the coupled sequences invert the guided step at the inversion's cfg (paper: 3 for both)

    def run(self, denoise, x, sigmas, on_step):
        y = self.broadcast(self.inversion.clues["edict.y"].to(x), x.shape[0])
        x, _ = edict_sample(denoise, x, y, sigmas, float(self.inversion.settings["mixing"]), on_step)
        return x


class EdictSampler(InversionSamplerNode):
    SAMPLING = EdictSampling
    NODE_ID = "InvertEditEDICTSampler"
    DESCRIPTION = ("The coupled EDICT denoising for an EDICT inversion, as a SAMPLER for SamplerCustomAdvanced "
                   "(use DisableNoise and EDICT Invert's SIGMAS). Two UNet calls a step.")


NODES = [EdictInvert, EdictSampler]
