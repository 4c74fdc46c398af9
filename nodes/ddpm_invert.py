"""Edit-Friendly DDPM Invert / Edit-Friendly DDPM Sampler (Huberman-Spiegelglas et al.; the
math is in ``inversion/ddpm.py``): per-step noise maps for the DDPM sampler, exact
reconstruction by construction, and the inversion LEDITS++ edits on."""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..inversion.ddpm import edit_friendly_invert, edit_friendly_sample
from ..inversion.record import Inversion
from .ddim_invert import check_invert_inputs, inversion_fingerprint
from ..adapters.errors import NodeInputError
from ..adapters.inversion_sampler import InversionSampling
from ..adapters.sampling import run_loop, schedule
from ..adapters.sockets import Inversion as InversionSocket

INVERT = "Edit-Friendly DDPM Invert"
SAMPLER = "Edit-Friendly DDPM Sampler"
METHOD = "edit-friendly"


class DDPMInvert(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDDPMInvert",
            display_name=INVERT,
            category="InvertEdit/inversion",
            description=("Edit-friendly DDPM inversion (Huberman-Spiegelglas et al.): the image is noised independently "
                         "at every step and the DDPM sampler's noise is solved for, one map per step. Sample with "
                         "SamplerCustomAdvanced + DisableNoise + the Edit-Friendly DDPM Sampler and the SIGMAS output: "
                         "the source prompt at the same cfg gives the image back exactly; a target prompt (paper: "
                         "cfg 15) edits it while the noise maps keep its structure."),
            inputs=[
                io.Model.Input("model", tooltip="The model to invert with; sample with the same one."),
                io.Latent.Input("latent", tooltip="The source image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt."),
                io.Conditioning.Input("negative", optional=True, tooltip="The unconditional prompt (usually empty); needed when cfg is not 1."),
                io.Int.Input("steps", default=100, min=1, max=1000, tooltip="Steps (paper: 100). Sample with the same steps."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform",
                               tooltip="The sigma schedule; sample with the same one."),
                io.Int.Input("start_at_step", default=36, min=0, max=999,
                             tooltip="Skip this many of the noisiest steps (paper: 36 of 100)."),
                io.Float.Input("cfg", default=3.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance with the source prompt while inverting (paper: 3.5)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the independent noise drawn at each step."),
            ],
            outputs=[
                InversionSocket.Output(display_name="INVERSION"),
                io.Latent.Output(display_name="LATENT", tooltip="The noised latent sampling starts from."),
                io.Sigmas.Output(display_name="SIGMAS", tooltip="The schedule back to the image, for SamplerCustomAdvanced."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, seed, negative=None) -> io.NodeOutput:
        samples = latent["samples"]
        check_invert_inputs(model, samples, steps, start_at_step, cfg, negative, INVERT)
        sigmas = schedule(model, scheduler, steps)
        run = sigmas[start_at_step:]
        record: dict = {}

        def loop(denoise, x, run_sigmas, step_callback):
            record["xs"], record["corrections"] = edit_friendly_invert(
                denoise, x, run_sigmas, torch.Generator().manual_seed(seed), step_callback)
            return record["xs"][0]

        out = run_loop(model, positive, negative, cfg, samples, run, loop)
        inversion = Inversion(
            method=METHOD, sigmas=sigmas, start_step=start_at_step,
            trajectory=record["xs"].to(out.device, torch.float32), latent=out,
            settings={"steps": steps, "scheduler": scheduler, "cfg": cfg, "start_at_step": start_at_step, "seed": seed},
            fingerprint=inversion_fingerprint(model, positive),
            clues={"ddpm.corrections": record["corrections"].to(out.device, torch.float32)},
        )
        return io.NodeOutput(inversion, {"samples": out}, run)


class EditFriendlySampling(InversionSampling):
    """The sampler function of an edit-friendly inversion (k-diffusion signature)."""

    NAME = SAMPLER

    def run(self, denoise, x, sigmas, on_step):
        corrections = self.broadcast(self.inversion.clues["ddpm.corrections"].to(x), x.shape[0], dim=1)
        return edit_friendly_sample(denoise, x, sigmas, corrections, on_step)


class DDPMSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDDPMSampler",
            display_name=SAMPLER,
            category="InvertEdit/inversion",
            description=("DDPM sampling with an edit-friendly inversion's noise maps, as a SAMPLER for "
                         "SamplerCustomAdvanced (use DisableNoise and the inversion's SIGMAS)."),
            inputs=[InversionSocket.Input("inversion", tooltip="From Edit-Friendly DDPM Invert (or loaded).")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        if inversion.method != METHOD:
            raise NodeInputError(SAMPLER, f"input 'inversion' is a {inversion.method} inversion; this sampler needs one "
                                          f"from Edit-Friendly DDPM Invert.")
        return io.NodeOutput(comfy.samplers.KSAMPLER(EditFriendlySampling(inversion)))


NODES = [DDPMInvert, DDPMSampler]
