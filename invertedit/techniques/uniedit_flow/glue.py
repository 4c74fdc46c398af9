"""UniEdit-Flow inside the host (math in ``fusion.py`` and ``inversion/flow.py``'s ``uni_inv``): Uni-Inv's inversion
loop with the authors' options (``zero_initial``; the early stop ``alpha`` is the record's start step, set by
``flow_invert``), and Uni-Edit as a GUIDER for SamplerCustomAdvanced.

The guider runs the host's Euler sampler from the inversion's NOISE on its SIGMAS (which start at the early stop):
at each step the source and target prompts are evaluated at the one latent in one batched model call, their
velocities fused (``fusion.edit_velocity``), and the sampler is handed the denoised prediction whose Euler step is
UniEdit-Flow's: ``x - sigma v`` (``fusion.edit_denoised``, from the two denoised predictions). The authors' scheduler steps a batch of two identical latents (source and target
rows get the same update); here the one latent is the edit. On SD3 the authors' runs take no classifier-free
guidance (their pipelines' ``guidance_scale=1.0``); given a negative and a scale, each prompt is guided as the
diffusers pipeline guides it at that scale (the negative evaluated once, in the same call).
"""
from __future__ import annotations


from ...hostkit.errors import NodeInputError
from ...hostkit.flow_inverters import check_run_schedule
from ...hostkit.guidance_driver import BatchedGuider, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.sampling import check_source_latent, with_guidance
from ...inversion import flow as FL
from . import fusion as F

NAME = "UniEdit-Flow"


def uni_inv_loop(zero_initial: bool):
    """Uni-Inv's inversion loop up the schedule (``flow_invert``'s ``loop``)."""
    def loop(velocity, x, sigmas, callback):
        return FL.uni_inv(velocity, x, sigmas.flip(0), zero_initial=zero_initial, callback=callback)
    return loop


class UniEditGuider(BatchedGuider):
    """Uni-Edit's GUIDER: conds ``source`` and ``target`` (and ``negative`` with classifier-free guidance)."""

    NAME = NAME

    def __init__(self, model, omega: float, mask: str, packed: bool, cfg: float | None):
        super().__init__(model)
        self.omega, self.mask, self.packed, self.guidance_scale = omega, mask, packed, cfg

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        euler = is_host_euler(sampler) or getattr(getattr(sampler, "sampler_function", None), "euler_step", False)
        if not euler:
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' is not "
                                       f"UniEdit-Flow's step; Uni-Edit integrates its edit with Euler steps (the "
                                       f"authors' scheduler): connect KSamplerSelect with euler (or the Flow Sampler with euler or uni-inv).")
        check_run_schedule(NAME, noise, sigmas)
        check_source_latent(NAME, latent_image, self.model_patcher, ", and Uni-Inv's NOISE and SIGMAS")
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        names = ["source", "target"] + (["negative"] if self.guidance_scale is not None else [])
        outs = predict_conds(self.inner_model, [self.conds.get(n) for n in names], x, timestep, model_options)
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        d = [o.float() for o in outs]   # fp32 where the model ran in half precision (a no-op in fp32)
        if self.guidance_scale is not None:   # the pipeline's CFG on each prompt's velocity: uncond + s (cond - uncond),
            d = [d[2] + self.guidance_scale * (d[i] - d[2]) for i in range(2)]   # the same on denoised, at one x
        packed = self.packed and x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
        return F.edit_denoised(d[0], d[1], sigma.float(), self.omega, 2 if packed else 1, self.mask).to(x.dtype)


def uni_edit_guider(model, source: list, target: list, negative: list | None, omega: float, mask: str,
                    guidance: float, distilled: bool, packed: bool) -> UniEditGuider:
    """The GUIDER: with ``distilled`` guidance (Flux dev) both prompts carry ``guidance``; with a ``negative``,
    classifier-free guidance at ``guidance`` on each prompt; else the prompts alone (the authors' runs)."""
    if distilled:
        source, target = with_guidance(source, guidance), with_guidance(target, guidance)
    guider = UniEditGuider(model, omega, mask, packed, guidance if negative is not None else None)
    conds = {"source": source, "target": target}
    if negative is not None:
        conds["negative"] = negative
    guider.set_named_conds(conds)
    return guider
