"""DNAEdit inside the host (math in ``dna.py``): DNAEdit Invert's loop on the host's model, the INVERSION
record carrying the per-step offsets and source velocities (clues ``DX`` and ``VELOCITY``), and DNAEdit's
GUIDER for SamplerCustomAdvanced, whose host Euler steps are the authors' Mobile Velocity Guidance updates.

The inversion evaluates the source prompt alone (the authors' source guidance 1: Flux dev's distilled
guidance at the node's ``guidance``, SD3 without classifier-free guidance). The edit evaluates the target
prompt once a step, with the host's own guidance: Flux dev's distilled guidance written into the target's
conditioning, or SD3's classifier-free guidance with a negative (the target and the negative in one batched
model call, the host's CFG); the source's velocities come from the record, not from a second evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...hostkit.errors import NodeInputError
from ...hostkit.flow_inverters import check_flow_inputs, velocity_model
from ...hostkit.guidance_driver import BatchedGuider
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.inverters import inversion_fingerprint
from ...hostkit.run_state import run_state
from ...hostkit.sampling import image_latent, run_loop, with_guidance
from ...inversion.methods import DNAEDIT
from ...inversion.record import Inversion
from . import dna as D

NAME = "DNAEdit"
INVERT_NAME = "DNAEdit Invert"
DX, VELOCITY = DNAEDIT.clues   # "dnaedit.dx", "dnaedit.velocity": [steps, B, C, H, W] in sampling order

#: The fewest steps an inversion runs (the schedule's steps less start_step): one step from the image to the
#: noise level redraws the picture, as every flow inverter's first step does (hostkit/flow_inverters.py's
#: FEWEST_STEPS: 2 for the second-order solvers, 3 for Euler, whose step DNAEdit's is)
FEWEST_STEPS = 2


def dnaedit_invert(model, samples: torch.Tensor, positive, sigmas: torch.Tensor, start: int, guidance: float,
                   seed: int, align_noise: bool, distilled: bool, packed: bool) -> Inversion:
    """DNA inversion of ``samples`` (a LATENT tensor) along ``sigmas`` (the edit's full schedule) up to
    ``sigmas[start]``; the record's trajectory runs from there down to the image, its clues hold each step's
    offset and source velocity in sampling order."""
    samples = image_latent(samples, model)
    steps = len(sigmas) - 1
    check_flow_inputs(INVERT_NAME, model, samples, positive, steps - start, FEWEST_STEPS)
    if distilled:
        positive = with_guidance(positive, guidance)
    run_sigmas = sigmas[start:].float().cpu()   # sampling-path-ok: node time, the schedule as the host keeps SIGMAS (CPU)
    found: dict = {}

    def loop(velocity, x, _host_sigmas, callback):
        noise = D.draw_noise(x, seed, packed).to(x.device)   # sampling-path-ok: once per inversion, before its loop
        states, offsets, velocities = D.invert(velocity, x.float(), run_sigmas.flip(0), noise, align_noise, callback)
        found.update(states=states, offsets=offsets, velocities=velocities)
        return states[-1]

    # The host hands the run's result back divided by 1 - its last sigma (a flow model's inverse_noise_scaling), here
    # the image's end: a schedule that stops short of 0 (the RF-Image-Editing reimplementation's) would scale the
    # inverted LATENT, so the host's copy ends at 0; the loop runs on run_sigmas.
    host_sigmas = torch.cat([run_sigmas[:-1], run_sigmas.new_zeros(1)])
    out = run_loop(velocity_model(model), positive, None, 1.0, samples, host_sigmas, loop, from_latent=True)
    trajectory = torch.stack(found["states"][::-1]).to(out.device, torch.float32)
    clues = {DX: torch.stack(found["offsets"][::-1]).to(out.device, torch.float32),
             VELOCITY: torch.stack(found["velocities"][::-1]).to(out.device, torch.float32)}
    if not (bool(torch.isfinite(trajectory).all()) and bool(torch.isfinite(clues[VELOCITY]).all())):   # sampling-path-ok: once per inversion, after its loop
        raise NodeInputError(INVERT_NAME, f"the inversion ran into NaN or infinite values ({steps} steps); load the "
                                          f"model in bfloat16 or float32 rather than float16.")
    # sampling-path-ok: the record keeps its schedule on the CPU, as every inverter's (the host's SIGMAS)
    return Inversion(method=DNAEDIT.name, sigmas=sigmas.float().cpu(), start_step=start, trajectory=trajectory,
                     latent=out, settings={"steps": steps, "scheduler": "sigmas", "cfg": 1.0, "start_at_step": start,
                                           "guidance": guidance, "seed": seed, "align_noise": align_noise},
                     fingerprint=inversion_fingerprint(model, positive), clues=clues)


@dataclass
class DNAEditRun:
    """One run's state: the record's offsets and source velocities on the run's device, the moving
    reference (the source image at first) and the run's sigmas."""
    offsets: torch.Tensor | None = None
    velocities: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    sigmas: torch.Tensor | None = None
    step: int = 0


class DNAEditGuider(BatchedGuider):
    """DNAEdit's GUIDER: conds ``positive`` (the target prompt) and, for classifier-free guidance,
    ``negative``; the host's CFG at ``cfg`` (1 for Flux, whose guidance is in the conditioning)."""

    NAME = NAME

    def __init__(self, model, inversion: Inversion, mvg: float):
        super().__init__(model)
        self.inversion, self.mvg = inversion, mvg

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' is not DNAEdit's "
                                       f"step; DNAEdit integrates its edit with Euler steps: connect KSamplerSelect "
                                       f"with euler.")
        inv = self.inversion
        want = inv.sampling_sigmas
        got = sigmas.detach().float().cpu()   # sampling-path-ok: once per run, before its first step
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-6):
            raise NodeInputError(NAME, f"the run's sigmas ({len(got) - 1} steps, from {float(got[0]):.4g}) are not "
                                       f"those DNAEdit Invert recorded ({len(want) - 1} steps, from "
                                       f"{float(want[0]):.4g}); connect DNAEdit Invert's SIGMAS output to the "
                                       f"sampler's sigmas.")
        if tuple(latent_image.shape) != inv.latent_shape:
            raise NodeInputError(NAME, f"the sampler's latent_image is {tuple(latent_image.shape)}, but the image was "
                                       f"inverted from a latent {inv.latent_shape}; connect the inverted image's latent "
                                       f"(VAE Encode) as latent_image.")
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def inner_sample(self, noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar, seed,
                     *args, **kwargs):
        # *args, **kwargs: what a newer host passes besides (``latent_shapes`` since late 2025), passed on unread
        inv = self.inversion
        x_src = self.inner_model.process_latent_in(latent_image)
        state = run_state(self.model_options["transformer_options"], self, DNAEditRun, NAME)
        like = x_src.float()
        state.offsets, state.velocities = inv.clues[DX].to(like), inv.clues[VELOCITY].to(like)
        state.reference = inv.trajectory[-1].to(like)
        state.sigmas = sigmas.to(like)
        # The run starts at the inverted latent whatever NOISE is connected: the host starts a flow model's run at
        # sigma_0 * noise + (1 - sigma_0) * latent, so this noise makes that the inversion's state.
        sigma0 = state.sigmas[0]
        start = (inv.trajectory[0].to(like) - (1 - sigma0) * like) / sigma0
        return super().inner_sample(start.to(x_src.dtype), latent_image, device, sampler, sigmas, denoise_mask,
                                    callback, disable_pbar, seed, *args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        state = run_state(model_options["transformer_options"], self, DNAEditRun, NAME)
        # the host's euler (the only sampler the guider runs with) calls once a step: the step is counted, not read
        # from the device's sigma (no wait for the device)
        step, state.step = state.step, state.step + 1
        xf = x.float()
        t = timestep.reshape(-1, *([1] * (x.ndim - 1))).to(xf)
        t_next = state.sigmas[step + 1]
        guess = xf + state.offsets[step]
        denoised = super().predict_noise(guess.to(x.dtype), timestep, model_options, seed).float()
        v_tar = (guess - denoised) / t
        state.reference = D.moved_reference(state.reference, v_tar, state.velocities[step], t, t_next)
        velocity = D.mobile_velocity(v_tar, xf, state.reference, t, self.mvg)
        return D.mobile_denoised(xf, velocity, t).to(x.dtype)


def dnaedit_guider(model, inversion: Inversion, target: list, negative: list | None, guidance: float, mvg: float,
                   distilled: bool) -> DNAEditGuider:
    """The GUIDER: with ``distilled`` guidance (Flux dev) the target carries it; else, given a negative,
    classifier-free guidance at ``guidance``; else the target alone."""
    guider = DNAEditGuider(model, inversion, mvg)
    conds = {"positive": with_guidance(target, guidance) if distilled else target}
    if negative is not None:
        conds["negative"] = negative
    guider.set_named_conds(conds)
    guider.set_cfg(guidance if negative is not None else 1.0)
    return guider
