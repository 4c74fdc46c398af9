"""DDIM Invert: a real image's latent to the noise latent that reconstructs it."""
from __future__ import annotations

from ..hostkit.schemas import io

from ..hostkit.inverters import invert, inverted_latent
from ..hostkit.schemas import inverter_inputs, inverter_outputs
from ..inversion.ddim import ddim_invert
from ..inversion.methods import DDIM


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
                steps=50, start_at_step=0, cfg=1.0, paper="papers",
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


NODES = [DDIMInvert]
