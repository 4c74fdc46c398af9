"""Prompt-to-Prompt inside the host, around its attention policy (``attention/controllers.py``,
run by ``attention_driver.py``): the model-call wrapper that leaves out the source rows nobody
reads, the local blend's post-CFG step, and the run's checks. Attention Inject wires them."""
from __future__ import annotations

import logging

import torch

from ..attention.controllers import PromptToPrompt
from ..attention.local_blend import blend_latents, blend_start
from ..attention.prompt_to_prompt import ReplaceSchedule, cross_steps, self_steps
from ..inversion.solver import denoised_onto, euler_step
from .errors import NodeInputError
from .keys import SOURCE_ON_TRAJECTORY, TARGET_ONLY
from .pair import PairRun, least_fraction
from .run_state import run_state
from .steps import post_cfg_step, step_at


NAME = "Attention Inject"   # the node these patches belong to, for messages


def take_rows(obj, index: list[int], batch: int):
    """``obj`` (tensors, lists, tuples, dicts of them) with the rows ``index`` of every tensor
    whose first dimension is the batch; anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj[index] if obj.ndim and obj.shape[0] == batch else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(take_rows(o, index, batch) for o in obj)
    if isinstance(obj, dict):
        return {k: take_rows(v, index, batch) for k, v in obj.items()}
    return obj


class SkipUnusedSource:
    """APPLY_MODEL wrapper that leaves out the source rows nobody reads, where that saves a whole
    UNet call's rows without splitting the call. With a Direct Inversion (Ju et al., "PnP
    Inversion") the source rows' prediction is replaced after CFG by the one that lands on the
    inversion's trajectory, so the source's own prediction is never used; what is used of the
    source is its conditional row's attention maps (Prompt-to-Prompt, Hertz et al., takes them
    from the conditional rows only), while maps are injected or a local blend reads them. Once
    no layer needs them, the step runs the target rows alone, in one call of half the rows; the
    left-out rows get the target's prediction as a stand-in, which the Direct correction
    overwrites. While any map is injected every row runs, in the one call the host makes:
    leaving out only the source's unconditional row would split the step into two UNet calls,
    which costs a whole call on a GPU, where a step is bound by dispatching kernels (issue 23)."""

    def __init__(self, schedule: ReplaceSchedule, blend: bool):
        self.schedule, self.blend = schedule, blend

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = list(transformer_options.get("cond_or_uncond", []))
        n, batch = len(chunks), x.shape[0]
        if transformer_options.get(SOURCE_ON_TRAJECTORY) != 1 or not n or batch != 2 * n \
                or transformer_options.get(TARGET_ONLY) or self.blend:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        step, steps = step_at(transformer_options["sample_sigmas"], transformer_options.get("sigmas", t))
        if self.schedule.injects_any(step, steps):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        options = dict(transformer_options, **{TARGET_ONLY: True})
        if isinstance(options.get("sigmas"), torch.Tensor) and options["sigmas"].shape[0] == 2:
            options["sigmas"] = options["sigmas"][1:]
        index = torch.arange(1, batch, 2, device=x.device)   # every chunk's target row
        args = take_rows((x, t, c_concat, c_crossattn, control, kwargs), index, batch)
        out = executor(*args[:5], options, **args[5])
        return out.repeat_interleave(2, dim=0)   # each target's prediction stands in for its source's


class LocalBlendStep:
    """Post-CFG function of the local blend: from its start step on, the target's prediction is
    the one whose DDIM/Euler step lands on ``source + mask * (target - source)``, the mask made
    from the run's maps so far (``attention/local_blend.py``). Runs after a Direct Inversion's
    correction, so the source is the corrected one, as in the reference. The maps are the
    run's state of ``policy`` (its cross-attention calls add them)."""

    def __init__(self, policy: PromptToPrompt):
        self.policy = policy

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        options = args["model_options"]["transformer_options"]
        step, steps = post_cfg_step(args)
        if step < blend_start(self.policy.blend.start, steps):
            return denoised
        blend = run_state(options, self.policy, self.policy.make_state, NAME)
        if x.shape[0] != 2:
            raise NodeInputError(NAME, f"the sampler runs a batch of {x.shape[0]}; the local blend works on the "
                                       f"LATENT pair from this node (row 0 source, row 1 target).")
        sigma_next = options["sample_sigmas"][step + 1].to(x)
        mask = blend.mask(tuple(x.shape[-2:])).to(x)
        nxt_s, nxt_t = (euler_step(x[i:i + 1], denoised[i:i + 1], sigma[0], sigma_next) for i in (0, 1))
        out = denoised.clone()
        out[1:2] = denoised_onto(x[1:2], sigma[0], sigma_next, blend_latents(nxt_s, nxt_t, mask))
        return out


class PromptToPromptRun(PairRun):
    """OUTER_SAMPLE wrapper: the pair editors' run checks (``PairRun``) and one log line with the
    step counts the run will use (the local blend's state is the policy's per-run state)."""

    node = NAME

    def __init__(self, policy: PromptToPrompt, source: list, reweight: bool = False):
        super().__init__(source)
        self.schedule, self.blend, self.reweight = policy.schedule, policy.blend, reweight

    def idle(self, steps: int) -> str | None:
        """A run in which no map is injected and no local blend runs (the fractions' step counts
        are 0 at this step count), or in which reweight's maps are never injected."""
        s = self.schedule
        cross = max(cross_steps(f, steps) for f in [s.cross] + [f for _, f in s.words])
        first, stop = self_steps(s.self_start, s.self_, steps)
        words = " (and cross_replace_words)" if s.words else ""
        more_cross = least_fraction(lambda f: cross_steps(f, steps))
        if self.reweight and not cross:
            return (f"input 'reweight' scales words' maps while cross-attention maps are injected, but cross_replace "
                    f"{s.cross:g}{words} injects them in none of the run's {steps} steps (the first int(f * (N + 1)) = 0); "
                    f"give cross_replace {more_cross:g} or more (paper: 0.8), or sample more steps.")
        if self.blend is None and not cross and stop <= first:
            return (f"inputs 'cross_replace' ({s.cross:g}){words} and 'self_replace' ({s.self_:g}) inject no map in a run "
                    f"of {steps} steps (cross-attention maps in the first int(f * (N + 1)) = 0 steps, self-attention maps "
                    f"in the first int(f * N) = 0), so {NAME} would never act; give cross_replace {more_cross:g} or "
                    f"self_replace {least_fraction(lambda f: self_steps(0.0, f, steps)[1]):g} or more (paper: 0.8 and "
                    f"0.4), or sample more steps.")
        return None

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        steps = len(sigmas) - 1
        self.check(executor.class_obj, steps)
        first, stop = self_steps(self.schedule.self_start, self.schedule.self_, steps)
        note = (f"{NAME}: {steps} steps: cross-attention maps injected in the first "
                f"{cross_steps(self.schedule.cross, steps)}, self-attention in steps {first} to {stop - 1}")
        if self.blend is not None:
            note += f", local blend after each step from step {blend_start(self.blend.start, steps)}"
        logging.info(note)
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

