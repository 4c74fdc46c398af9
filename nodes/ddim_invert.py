"""DDIM Invert: a real image's latent to the noise latent that reconstructs it."""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..inversion.ddim import ddim_invert
from ..inversion.record import Inversion
from ..adapters.errors import NodeInputError
from ..adapters.fingerprint import conditioning_fingerprint, model_fingerprint
from ..adapters.sampling import check_model_family, run_loop, schedule
from ..adapters.sockets import Inversion as InversionSocket

NAME = "DDIM Invert"
PNP_SCHEDULE_NOTE = (
    "DDIM Invert starts from the image at sigma 0 (alpha_bar 1, diffusers' set_alpha_to_one=True). The schedule of "
    "the PnPInversion / PIE-Bench code (set_alpha_to_one=False, steps_offset=0: timesteps 980..0 at 50 steps, ending "
    "at sigma_min 0.029 with a last step that does not move) has no counterpart among the host's schedulers. Use "
    "'ddim_uniform': diffusers' DDIM timesteps with steps_offset=1 (981..1), from and to sigma 0, the setting the "
    "pack's parity tests run the PnPInversion code with.")


class DDIMInvert(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDDIMInvert",
            display_name=NAME,
            category="InvertEdit/inversion",
            description=(
                "Runs deterministic DDIM backwards, from the image's latent to noise, with the source prompt. "
                "Sampling the inverted LATENT with KSamplerAdvanced (add_noise disable, the same steps, scheduler "
                "and start_at_step, sampler ddim or euler) gives the image back; change the prompt to edit it."),
            inputs=[
                io.Model.Input("model", tooltip="The model to invert with. Sample with the same model (LoRAs included)."),
                io.Latent.Input("latent", tooltip="The source image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is (the papers' source prompt)."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="DDIM steps (papers: 50). Sample with the same number of steps: more steps, closer reconstruction."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="ddim_uniform",
                               tooltip="The sigma schedule; sample with the same one. ddim_uniform gives the papers' DDIM "
                                       "timesteps (diffusers' DDIMScheduler, steps_offset=1, from and to sigma 0); the "
                                       "PnPInversion code's set_alpha_to_one=False variant is not a host schedule."),
                io.Int.Input("start_at_step", default=0, min=0, max=999,
                             tooltip="0 inverts all the way to noise. k > 0 stops k steps short of it (partial inversion: "
                                     "edits change less). Use the same start_at_step in KSamplerAdvanced."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance during inversion (papers: 1, i.e. none). Other values need 'negative'."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Only used when cfg is not 1: the unconditional prompt (usually empty)."),
            ],
            outputs=[
                InversionSocket.Output(display_name="INVERSION", tooltip="The inversion: schedule, trajectory and fingerprint, for Apply Inversion, Save Inversion and the editors."),
                io.Latent.Output(display_name="LATENT", tooltip="The inverted latent: feed it to KSamplerAdvanced with add_noise disabled."),
                io.Sigmas.Output(display_name="SIGMAS", tooltip="The schedule from the inverted latent back to the image, for SamplerCustomAdvanced (with DisableNoise)."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, negative=None) -> io.NodeOutput:
        inversion = invert(model, latent["samples"], positive, steps, scheduler, start_at_step, cfg, negative)
        return io.NodeOutput(inversion, {"samples": inversion.latent}, inversion.sampling_sigmas)


def check_invert_inputs(model, samples: torch.Tensor, steps: int, start_at_step: int, cfg: float, negative,
                        node: str) -> None:
    """The checks every inversion node makes on its inputs, with messages naming the node."""
    check_model_family(model, node)
    if start_at_step >= steps:
        raise NodeInputError(node, f"start_at_step ({start_at_step}) must be smaller than steps ({steps}).")
    if abs(cfg - 1.0) > 1e-6 and negative is None:
        raise NodeInputError(node, f"cfg is {cfg:g}, which needs a 'negative' conditioning; connect one or set cfg to 1.")
    if samples.ndim != 4:
        raise NodeInputError(node, f"input 'latent' has shape {tuple(samples.shape)}; an image latent [batch, channels, height, width] is needed.")


def inversion_fingerprint(model, positive) -> dict:
    return {**{f"model.{k}": v for k, v in model_fingerprint(model).items()},
            "positive": conditioning_fingerprint(positive)}


def invert(model, samples: torch.Tensor, positive, steps: int, scheduler: str, start_at_step: int,
           cfg: float = 1.0, negative=None, node: str = NAME) -> Inversion:
    """DDIM-invert a LATENT tensor with the host's model; the shared core of the inversion nodes."""
    check_invert_inputs(model, samples, steps, start_at_step, cfg, negative, node)
    sigmas = schedule(model, scheduler, steps)
    ascending = sigmas[start_at_step:].flip(0)
    if float(ascending[0]) != 0.0:
        raise NodeInputError(node, f"scheduler '{scheduler}' does not end at sigma 0, where the image's latent sits; "
                                   f"{PNP_SCHEDULE_NOTE}")
    record: dict = {}

    def loop(denoise, x, run_sigmas, step_callback):
        record["trajectory"] = ddim_invert(denoise, x, run_sigmas, step_callback)
        return record["trajectory"][-1]

    out = run_loop(model, positive, negative, cfg, samples, ascending, loop)
    trajectory = record["trajectory"].flip(0).to(out.device, torch.float32)
    return Inversion(
        method="ddim",
        sigmas=sigmas,
        start_step=start_at_step,
        trajectory=trajectory,
        latent=out,
        settings={"steps": steps, "scheduler": scheduler, "cfg": cfg, "start_at_step": start_at_step},
        fingerprint=inversion_fingerprint(model, positive),
    )


NODES = [DDIMInvert]
