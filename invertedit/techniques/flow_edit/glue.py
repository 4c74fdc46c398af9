"""FlowEdit inside the host (math in ``ode.py``): a GUIDER for SamplerCustomAdvanced
that edits the LATENT it is given (the source image's, from VAE Encode) without inverting it.

The host's Euler sampler integrates the edit: the guider starts the run at the source latent
itself (not at noise), and at each step hands the sampler the denoised prediction whose Euler
step is FlowEdit's (``edit_denoised``, ``landing_denoised``). Each acting step evaluates the
source prompt at a fresh noisy copy of the source and the target prompt at the same noise added
to the edit in one batched model call (``BranchInputs``: each prompt's rows get their own latent),
with SD3's (and Qwen-Image's) classifier-free guidance per prompt (a negative, two scales) or Flux's
distilled guidance written into each prompt's conditioning. One call where the host can batch the
prompts: on Qwen-Image, whose text is not padded, only prompts of the same token count share a call
(the host's ``CONDRegular.can_concat``), so a source and target of different lengths take a call
each, with the rows of the one call split between them (the same evaluations; never padded here, as
the host's Qwen-Image reads no text mask and padding would change its prediction). The noises of the whole run are drawn once, at
its start, from the NOISE input's seed on the CPU (as the host draws its own noise; the authors
draw Flux's noise in the transformer's 2x2 token layout, and so does this), then moved to the
device once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ...hostkit.branch_inputs import BranchInputs, with_branch_inputs
from ...hostkit.errors import NodeInputError
from ...hostkit.guidance_driver import BatchedGuider, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.run_state import run_state
from ...hostkit.sampling import check_source_latent, with_guidance
from ...hostkit.steps import step_at
from ...inversion.run_noises import draw_noises
from . import ode as F

NAME = "FlowEdit"


#: A run of one step replaces the picture (docs/measurements.md, "How few steps"): the fewest FlowEdit samples.
FEWEST_STEPS = 2

@dataclass(frozen=True)
class FlowEditSettings:
    """The node's settings (the authors' names)."""
    source_guidance: float
    target_guidance: float
    n_max: int
    n_min: int
    n_avg: int


@dataclass
class FlowEditRun:
    """One run's state: the source latent and the run's noises, in the order FlowEdit uses them."""
    x_src: torch.Tensor | None = None
    noises: torch.Tensor | None = None
    used: int = 0

    def take(self, n: int) -> torch.Tensor:
        """The run's next ``n`` noises, stacked on the batch dimension (``n * B`` rows)."""
        out = self.noises[self.used:self.used + n]
        self.used += n
        return out.flatten(0, 1)


class FlowEditGuider(BatchedGuider):
    """FlowEdit's GUIDER: conds ``source`` and ``target`` (and, with classifier-free guidance,
    ``negative``); see the module docstring."""

    NAME = NAME

    def __init__(self, model, settings: FlowEditSettings, cfg: bool, packed_noise: bool):
        super().__init__(model)
        self.settings, self.use_cfg, self.packed_noise = settings, cfg, packed_noise

    # -- the run -----------------------------------------------------------------------------

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' is not FlowEdit's "
                                       f"step; FlowEdit integrates its edit with Euler steps: connect KSamplerSelect "
                                       f"with euler.")
        steps, s = len(sigmas) - 1, self.settings
        if steps < FEWEST_STEPS:
            raise NodeInputError(NAME, f"the run has {steps} step; FlowEdit needs at least 2: one step from pure noise "
                                       f"replaces the picture (the toy flow model: background 20.9 dB to the target at "
                                       f"1 step, where the authors' 28 steps keep 26.1). Give the scheduler 2 or more "
                                       f"steps (authors: 28 for Flux, 50 for SD3).")
        if s.n_max >= steps:
            logging.warning("%s: n_max (%d) is not below the run's %d steps, so the edit starts at pure noise (sigma %.3g) "
                            "and may replace the whole picture (the toy flow model at 4 and 6 steps: nothing of the "
                            "image kept); the authors start it after the first few steps (n_max 24 of 28 for Flux, "
                            "33 of 50 for SD3).", NAME, s.n_max, steps, float(sigmas[0]))
        if s.n_min >= steps:
            raise NodeInputError(NAME, f"n_min is {s.n_min} but the run has {steps} steps; n_min counts the last steps "
                                       f"sampled without the source: keep it below the steps (authors: 0).")
        check_source_latent(NAME, latent_image, self.model_patcher)
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def inner_sample(self, noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar, seed,
                     *args, **kwargs):
        # *args, **kwargs: what a newer host passes besides (``latent_shapes`` since late 2025), passed on unread
        x_src = self.inner_model.process_latent_in(latent_image)
        state = run_state(self.model_options["transformer_options"], self, FlowEditRun, NAME)
        steps, s = len(sigmas) - 1, self.settings
        phases = [F.phase(i, steps, s.n_max, s.n_min) for i in range(steps)]
        count = s.n_avg * phases.count(F.Phase.EDIT) + phases.count(F.Phase.JUMP)
        state.x_src = x_src
        state.noises = draw_noises(count, x_src, 0 if seed is None else seed,
                                   self.packed_noise and x_src.shape[-1] % 2 == 0 and x_src.shape[-2] % 2 == 0)
        # The host starts the sampler at noise_scaling(sigma_0, noise, latent): for a flow model
        # sigma_0 * noise + (1 - sigma_0) * latent, so handing it the source as the noise starts it at the source.
        return super().inner_sample(x_src, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar,
                                    seed, *args, **kwargs)

    # -- one step ----------------------------------------------------------------------------

    def _denoised(self, rows: dict[str, torch.Tensor], sigma: torch.Tensor, model_options: dict) -> dict:
        """The guided denoised prediction of each prompt in ``rows`` (``"source"``/``"target"``: the
        latent it is evaluated at), from one batched model call."""
        names = list(rows)
        conds, inputs = [], {}
        for name in names:
            conds.append(self.conds.get(name))
            inputs[len(conds) - 1] = rows[name]
            if self.use_cfg:
                conds.append(self.conds.get("negative"))
                inputs[len(conds) - 1] = rows[name]
        first = rows[names[0]]
        t = sigma if first.shape[0] == sigma.shape[0] else sigma.repeat(first.shape[0] // sigma.shape[0])
        options = with_branch_inputs(model_options, BranchInputs(inputs))
        outs = predict_conds(self.inner_model, conds, first, t, options)
        scales = {"source": self.settings.source_guidance, "target": self.settings.target_guidance}
        if not self.use_cfg:
            return dict(zip(names, outs))
        return {name: F.guided(outs[2 * i + 1], outs[2 * i], scales[name]) for i, name in enumerate(names)}

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        options = model_options["transformer_options"]
        state = run_state(options, self, FlowEditRun, NAME)
        sigmas = options["sample_sigmas"]
        step, steps = step_at(sigmas, timestep)
        s = self.settings
        now = F.phase(step, steps, s.n_max, s.n_min)
        if now is F.Phase.SKIP:
            return x                                  # no move: the edit waits at the source
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        if now is F.Phase.SAMPLE:
            return self._denoised({"target": x}, timestep, model_options)["target"]
        x_src = state.x_src.to(x)
        if now is F.Phase.EDIT:
            k = s.n_avg
            noise = state.take(k).to(x)
            if k > 1:   # the k noises side by side in one batch
                x_src, x, sigma = (v.repeat(k, *([1] * (v.ndim - 1))) for v in (x_src, x, sigma))
            z_src = F.noised_source(x_src, noise, sigma)
            z_tar = F.target_input(x, z_src, x_src)
            out = self._denoised({"source": z_src, "target": z_tar}, timestep, model_options)
            delta = out["target"] - out["source"]
            if k > 1:
                delta = delta.unflatten(0, (k, -1)).mean(0)
            return F.edit_denoised(state.x_src.to(delta), delta)
        # JUMP: noise the edit at this level, then the first plain target step from there
        z_src = F.noised_source(x_src, state.take(1).to(x), sigma)
        z_tar = F.target_input(x, z_src, x_src)
        d_tar = self._denoised({"target": z_tar}, timestep, model_options)["target"]
        sigma_next = sigmas[step + 1].to(x)
        landing = z_tar + (sigma_next - sigma) * F.velocity(z_tar, d_tar, sigma)
        return F.landing_denoised(x, landing, sigma, sigma_next)


def flow_edit_guider(model, source: list, target: list, negative: list | None, settings: FlowEditSettings,
                     distilled: bool, packed_noise: bool) -> FlowEditGuider:
    """The GUIDER: with ``distilled`` guidance (Flux dev) each prompt carries its guidance; else,
    given a negative, classifier-free guidance at each prompt's scale; else the prompts alone."""
    if distilled:
        source, target = with_guidance(source, settings.source_guidance), with_guidance(target, settings.target_guidance)
    guider = FlowEditGuider(model, settings, cfg=negative is not None, packed_noise=packed_noise)
    conds = {"source": source, "target": target}
    if negative is not None:
        conds["negative"] = negative
    guider.set_named_conds(conds)
    return guider
