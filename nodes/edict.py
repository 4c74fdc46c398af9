"""EDICT Invert / EDICT Sampler: exact inversion with two coupled sequences (Wallace et al.).

EDICT Invert records both sequences' inverted latents; the EDICT Sampler (a SAMPLER for the
stock SamplerCustomAdvanced, with DisableNoise) runs the coupled denoising from them, so the
source comes back to float round-off at the inversion's guidance scale (the paper: cfg 3,
mixing 0.93). Two UNet calls a step.
"""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..inversion.edict import edict_invert, edict_sample
from ..inversion.record import Inversion
from .ddim_invert import check_invert_inputs, inversion_fingerprint
from ..adapters.errors import NodeInputError
from ..adapters.inversion_sampler import InversionSampling
from ..adapters.sampling import run_loop, schedule
from ..adapters.sockets import Inversion as InversionSocket

INVERT = "EDICT Invert"
SAMPLER = "EDICT Sampler"


class EdictInvert(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditEDICTInvert",
            display_name=INVERT,
            category="InvertEdit/inversion",
            description=("Exact inversion (EDICT, Wallace et al.): two coupled latent sequences that can be run "
                         "backwards without error. Sample with SamplerCustomAdvanced + DisableNoise + the EDICT "
                         "Sampler node and the SIGMAS output, at the same cfg: the image comes back exactly."),
            inputs=[
                io.Model.Input("model", tooltip="The model to invert with; sample with the same one."),
                io.Latent.Input("latent", tooltip="The source image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt."),
                io.Conditioning.Input("negative", optional=True, tooltip="The unconditional prompt (usually empty); needed when cfg is not 1."),
                io.Int.Input("steps", default=50, min=1, max=1000, tooltip="Steps (paper: 50). Sample with the same steps."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform",
                               tooltip="The sigma schedule; sample with the same one."),
                io.Int.Input("start_at_step", default=10, min=0, max=999,
                             tooltip="Partial inversion: skip this many of the noisiest steps (paper: strength 0.8, "
                                     "i.e. 10 of 50)."),
                io.Float.Input("cfg", default=3.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance while inverting (paper: 3). Sample at the same cfg for an exact reconstruction."),
                io.Float.Input("mixing", default=0.93, min=0.5, max=0.999, step=0.001,
                               tooltip="Mixing weight p of the coupled sequences (paper: 0.93)."),
            ],
            outputs=[
                InversionSocket.Output(display_name="INVERSION"),
                io.Latent.Output(display_name="LATENT", tooltip="The inverted latent of the first sequence."),
                io.Sigmas.Output(display_name="SIGMAS", tooltip="The schedule back to the image, for SamplerCustomAdvanced."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, mixing, negative=None) -> io.NodeOutput:
        samples = latent["samples"]
        check_invert_inputs(model, samples, steps, start_at_step, cfg, negative, INVERT)
        sigmas = schedule(model, scheduler, steps)
        run = sigmas[start_at_step:]
        xs: list = []
        record: dict = {}

        def loop(denoise, x, run_sigmas, step_callback):
            xs.append(x)

            def on_step(i, total, x_now):
                xs.append(x_now)
                step_callback(i, total, x_now)

            record["x"], record["y"] = edict_invert(denoise, x, run_sigmas, mixing, on_step)
            return record["x"]

        out = run_loop(model, positive, negative, cfg, samples, run, loop)
        inversion = Inversion(
            method="edict", sigmas=sigmas, start_step=start_at_step,
            trajectory=torch.stack(xs[::-1]).to(out.device, torch.float32), latent=out,
            settings={"steps": steps, "scheduler": scheduler, "cfg": cfg, "start_at_step": start_at_step, "mixing": mixing},
            fingerprint=inversion_fingerprint(model, positive),
            clues={"edict.y": record["y"].to(out.device, torch.float32)},
        )
        return io.NodeOutput(inversion, {"samples": out}, run)


class EdictSampling(InversionSampling):
    """The sampler function of an EDICT inversion (k-diffusion signature)."""

    NAME = SAMPLER

    def run(self, denoise, x, sigmas, on_step):
        y = self.broadcast(self.inversion.clues["edict.y"].to(x), x.shape[0])
        x, _ = edict_sample(denoise, x, y, sigmas, float(self.inversion.settings["mixing"]), on_step)
        return x


class EdictSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditEDICTSampler",
            display_name=SAMPLER,
            category="InvertEdit/inversion",
            description=("The coupled EDICT denoising for an EDICT inversion, as a SAMPLER for SamplerCustomAdvanced "
                         "(use DisableNoise and EDICT Invert's SIGMAS). Two UNet calls a step."),
            inputs=[InversionSocket.Input("inversion", tooltip="From EDICT Invert (or a loaded EDICT inversion).")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        if inversion.method != "edict":
            raise NodeInputError(SAMPLER, f"input 'inversion' is a {inversion.method} inversion; the EDICT Sampler needs "
                                          f"one from EDICT Invert.")
        return io.NodeOutput(comfy.samplers.KSAMPLER(EdictSampling(inversion)))


NODES = [EdictInvert, EdictSampler]
