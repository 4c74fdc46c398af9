"""FlowAlign inside the host (math in ``align.py``): a GUIDER for SamplerCustomAdvanced that edits the LATENT it is
given (the source image's, from VAE Encode) without inverting it, as FlowEdit's guider does.

The host's Euler sampler integrates the edit: the guider starts the run at the source latent itself (not at noise)
and at each step hands the sampler the denoised prediction whose Euler step is the authors' FlowAlign step
(``align.edit_denoised``). Every step acts (the authors' code skips none). Each step evaluates, in one batched model
call (``BranchInputs``: each cond's rows get their own latent), the target and the source prompt at ``p`` (the edit
with the step's noise) and the source prompt at ``q`` (the source with the same noise): 3 rows; with guidance 1 the
source at ``p`` drops out (2 rows); on Qwen-Image, whose prompts are not padded, prompts of different token counts
take a call each (the host batches one count only), the same rows, as FlowEdit's. No negative prompt: the authors guide the target over the source prompt. The
step's noises are drawn once per run from the NOISE input's seed (``inversion.run_noises``: on SD3, what the
authors' ``torch.manual_seed(seed)`` and a ``randn_like`` a step give; Flux's in its 2x2 token layout, as FlowEdit's
Flux code draws them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...hostkit.branch_inputs import BranchInputs, with_branch_inputs
from ...hostkit.errors import NodeInputError
from ...hostkit.guidance_driver import BatchedGuider, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.run_state import run_state
from ...hostkit.sampling import check_source_latent
from ...hostkit.steps import step_at
from ...inversion.run_noises import draw_noises
from . import align as A

NAME = "FlowAlign"

#: One step from pure noise replaces the picture (FlowEdit's measurement, "How few steps"): the fewest steps.
FEWEST_STEPS = 2


@dataclass(frozen=True)
class FlowAlignSettings:
    """The node's settings: ``guidance`` the authors' ``cfg_scale``, ``zeta`` their regulariser weight (``0.01``)."""
    guidance: float
    zeta: float


@dataclass
class FlowAlignRun:
    """One run's state: the source latent and the run's noises, one per step."""
    x_src: torch.Tensor | None = None
    noises: torch.Tensor | None = None


class FlowAlignGuider(BatchedGuider):
    """FlowAlign's GUIDER: conds ``source`` and ``target``; see the module docstring."""

    NAME = NAME

    def __init__(self, model, settings: FlowAlignSettings, packed_noise: bool):
        super().__init__(model)
        self.settings, self.packed_noise = settings, packed_noise

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' is not FlowAlign's "
                                       f"step; FlowAlign integrates its edit with Euler steps: connect KSamplerSelect "
                                       f"with euler.")
        steps = len(sigmas) - 1
        if steps < FEWEST_STEPS:
            raise NodeInputError(NAME, f"the run has {steps} step; FlowAlign needs at least 2: one step from pure "
                                       f"noise replaces the picture. Give the scheduler 2 or more steps (authors: 33 "
                                       f"for SD3).")
        why = A.check_schedule(sigmas)
        if why is not None:
            raise NodeInputError(NAME, f"input 'sigmas': {why}; FlowAlign's regulariser moves the edit once a step, "
                                       f"which a step of no length cannot carry. Connect a scheduler's SIGMAS "
                                       f"(BasicScheduler), which go down at every step.")
        check_source_latent(NAME, latent_image, self.model_patcher)
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def inner_sample(self, noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar, seed,
                     *args, **kwargs):
        x_src = self.inner_model.process_latent_in(latent_image)
        state = run_state(self.model_options["transformer_options"], self, FlowAlignRun, NAME)
        state.x_src = x_src
        state.noises = draw_noises(len(sigmas) - 1, x_src, 0 if seed is None else seed,
                                   self.packed_noise and x_src.shape[-1] % 2 == 0 and x_src.shape[-2] % 2 == 0)
        # The host starts the sampler at noise_scaling(sigma_0, noise, latent) = sigma_0 noise + (1 - sigma_0) latent
        # for a flow model: the source as the noise starts it at the source.
        return super().inner_sample(x_src, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar,
                                    seed, *args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        options = model_options["transformer_options"]
        state = run_state(options, self, FlowAlignRun, NAME)
        sigmas = options["sample_sigmas"]
        step, _ = step_at(sigmas, timestep)
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        x_src = state.x_src.to(x)
        q = A.noised_source(x_src, state.noises[step].to(x), sigma)
        p = A.edit_input(x, q, x_src)
        cfg = self.settings.guidance != 1.0
        conds = [self.conds.get("target")] + ([self.conds.get("source")] if cfg else []) + [self.conds.get("source")]
        inputs = {i: z for i, z in enumerate([p, p, q] if cfg else [p, q])}
        outs = predict_conds(self.inner_model, conds, p, timestep, with_branch_inputs(model_options,
                                                                                     BranchInputs(inputs)))
        d_p = A.guided(outs[1], outs[0], self.settings.guidance) if cfg else outs[0]
        sigma_next = sigmas[step + 1].to(x).reshape(-1, *([1] * (x.ndim - 1)))
        return A.edit_denoised(x_src, d_p, outs[-1], sigma, sigma_next, self.settings.zeta)


def flow_align_guider(model, source: list, target: list, settings: FlowAlignSettings,
                      packed_noise: bool) -> FlowAlignGuider:
    """The GUIDER over the two prompts as they come (on Flux dev each carries its distilled guidance: FluxGuidance,
    else the model's default)."""
    guider = FlowAlignGuider(model, settings, packed_noise=packed_noise)
    guider.set_named_conds({"target": target, "source": source})
    return guider
