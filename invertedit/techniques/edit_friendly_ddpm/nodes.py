"""Edit-Friendly DDPM Invert / Edit-Friendly DDPM Sampler (Huberman-Spiegelglas et al.; the
math is in ``noise_maps.py``): per-step noise maps for the DDPM sampler, exact
reconstruction by construction, and the inversion LEDITS++ edits on."""
from __future__ import annotations

import torch
from ...hostkit.schemas import io

from ...hostkit.inversion_sampler import InversionSamplerNode, InversionSampling
from ...hostkit.inverters import invert, inverted_latent
from ...hostkit.schemas import inverter_inputs, inverter_outputs
from ...inversion.methods import EDIT_FRIENDLY
from . import ROW
from .noise_maps import edit_friendly_invert, edit_friendly_sample


class DDPMInvert(io.ComfyNode):
    NAME = EDIT_FRIENDLY.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDDPMInvert",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Edit-friendly DDPM inversion (Huberman-Spiegelglas et al.): the image is noised independently "
                         "at every step and the DDPM sampler's noise is solved for, one map per step. Sample with "
                         "SamplerCustomAdvanced + DisableNoise + the Edit-Friendly DDPM Sampler and the SIGMAS output: "
                         "the source prompt at the same cfg gives the image back exactly; a target prompt (paper: "
                         "cfg 15) edits it while the noise maps keep its structure."),
            inputs=inverter_inputs(
                steps=ROW.settings["InvertEditDDPMInvert.steps"], start_at_step=ROW.settings["InvertEditDDPMInvert.start_at_step"],
                cfg=ROW.settings["InvertEditDDPMInvert.cfg"], paper="paper",
                start_tooltip="Skip this many of the noisiest steps (paper: 36 of 100).",
                cfg_tooltip="Guidance with the source prompt while inverting (paper: 3.5).") + [
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the independent noise drawn at each step."),
            ],
            outputs=inverter_outputs("The noised latent sampling starts from.",
                                     "The schedule back to the image, for SamplerCustomAdvanced."),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, seed, negative=None) -> io.NodeOutput:
        inversion = invert(EDIT_FRIENDLY, edit_friendly_invert, model, latent["samples"], positive, negative, steps,
                           scheduler, start_at_step, cfg, settings={"seed": seed},
                           generator=torch.Generator().manual_seed(seed))
        return io.NodeOutput(inversion, inverted_latent(inversion), inversion.sampling_sigmas)


class EditFriendlySampling(InversionSampling):
    """The sampler function of an edit-friendly inversion (k-diffusion signature)."""

    NAME = "Edit-Friendly DDPM Sampler"
    METHOD = EDIT_FRIENDLY

    def run(self, denoise, x, sigmas, on_step):
        corrections = self.broadcast(self.inversion.clues["ddpm.corrections"].to(x), x.shape[0], dim=1)
        return edit_friendly_sample(denoise, x, sigmas, corrections, on_step)


class DDPMSampler(InversionSamplerNode):
    SAMPLING = EditFriendlySampling
    NODE_ID = "InvertEditDDPMSampler"
    DESCRIPTION = ("DDPM sampling with an edit-friendly inversion's noise maps, as a SAMPLER for "
                   "SamplerCustomAdvanced (use DisableNoise and the inversion's SIGMAS).")


NODES = [DDPMInvert, DDPMSampler]
