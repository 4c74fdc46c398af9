"""Prompt-to-Prompt inside the host, around its attention policy (``attention/controllers.py``,
run by ``attention_driver.py``): the model-call wrapper that leaves out the source rows nobody
reads, the local blend's post-CFG step, and the run's checks. Attention Inject wires them."""
from __future__ import annotations

import logging
import math

import torch

from ..attention.controllers import AttentionRefine, AttentionReplace, AttentionReweight, PromptToPrompt
from ..attention.local_blend import LocalBlend, blend_denoised, blend_start
from ..attention.prompt_to_prompt import ReplaceSchedule, cross_steps, equalizer, self_steps
from .errors import NodeInputError, check_threshold
from .inversion_patches import sampler_name, steps_as_euler
from .keys import SOURCE_ON_TRAJECTORY, TARGET_ONLY
from .pair import PairRun, least_fraction
from .run_state import run_state
from .steps import post_cfg_step, sigma_list, sigma_value, step_at


NAME = "Attention Inject"   # the node these patches belong to, for messages


def take_rows(obj, index: slice, batch: int):
    """``obj`` (tensors, lists, tuples, dicts of them) with the rows ``index`` of every tensor
    whose first dimension is the batch; anything else unchanged. A slice, so each is a view: no
    index tensor, no gather kernel, and it holds for a tensor on any device."""
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
        index = slice(1, None, 2)   # every chunk's target row
        args = take_rows((x, t, c_concat, c_crossattn, control, kwargs), index, batch)
        out = executor(*args[:5], options, **args[5])
        return out.repeat_interleave(2, dim=0)   # each target's prediction stands in for its source's


class LocalBlendStep:
    """Post-CFG function of the local blend: from its start step on, the target's prediction is
    the one whose DDIM/Euler step lands on ``source + mask * (target - source)``, the mask made
    from the run's maps so far (``attention/local_blend.py``). Runs after a Direct Inversion's
    correction, so the source is the corrected one, as in the reference. With a ``trajectory`` (a
    flow inversion's, in sampling order, whose states the source row is given) the source's next
    latent is the trajectory's. The maps are the run's state of ``policy`` (its cross-attention
    calls add them)."""

    def __init__(self, policy, node: str = NAME, trajectory: torch.Tensor | None = None):
        self.policy, self.node, self.trajectory = policy, node, trajectory

    def source_next(self, x: torch.Tensor, step: int, options: dict) -> torch.Tensor | None:
        """The source row's latent after the step, where a trajectory gives it; None: the source row's
        own DDIM/Euler step."""
        if self.trajectory is None:
            return None
        kept = run_state(options, self, dict, self.node)
        key = (x.device, x.dtype)
        if key not in kept:   # once per run, on the latent's device
            kept[key] = self.trajectory.to(x)
        return kept[key][step + 1]

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        options = args["model_options"]["transformer_options"]
        step, steps = post_cfg_step(args)
        if step < blend_start(self.policy.blend.start, steps):
            return denoised
        blend = run_state(options, self.policy, self.policy.make_state, self.node)
        if x.shape[0] != 2:
            raise NodeInputError(self.node, f"the sampler runs a batch of {x.shape[0]}; the local blend works on the "
                                            f"source/target pair from this node (row 0 source, row 1 target).")
        ratio = sigma_list(options["sample_sigmas"])[step + 1] / sigma_value(sigma)   # read once a run / a call
        outside = blend.outside(tuple(x.shape[-2:]), x.dtype)
        return blend_denoised(x, denoised, outside, ratio, self.source_next(x, step, options))


class PromptToPromptRun(PairRun):
    """OUTER_SAMPLE wrapper: the pair editors' run checks (``PairRun``) and one log line with the
    step counts the run will use (the local blend's state is the policy's per-run state)."""

    node = NAME

    def __init__(self, policy, source: list, reweight: bool = False, node: str = NAME):
        super().__init__(source)
        self.schedule, self.blend, self.reweight, self.node = policy.schedule, policy.blend, reweight, node

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
                    f"in the first int(f * N) = 0), so {self.node} would never act; give cross_replace {more_cross:g} or "
                    f"self_replace {least_fraction(lambda f: self_steps(0.0, f, steps)[1]):g} or more (paper: 0.8 and "
                    f"0.4), or sample more steps.")
        return None

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        steps = len(sigmas) - 1
        self.check(executor.class_obj, steps)
        if self.blend is not None and not steps_as_euler(sampler):
            raise NodeInputError(self.node, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' steps "
                                            f"differently from the DDIM/Euler step for which the local blend makes the "
                                            f"blended latent, so what lies outside the mask would drift from the image; use "
                                            f"ddim or euler (Flow Sampler: euler), or leave the blend words empty.")
        first, stop = self_steps(self.schedule.self_start, self.schedule.self_, steps)
        note = (f"{self.node}: {steps} steps: cross-attention maps injected in the first "
                f"{cross_steps(self.schedule.cross, steps)}, self-attention in steps {first} to {stop - 1}")
        if self.blend is not None:
            note += f", local blend after each step from step {blend_start(self.blend.start, steps)}"
        logging.info(note)
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)



# ----------------------------------------------------------------------------- the nodes' settings

MODES = ("replace", "refine")
MAX_SCALE = 100.0   # reweight scales beyond this only overflow the maps


def controller(schedule: ReplaceSchedule, blend: LocalBlend | None, swap: torch.Tensor | None,
               refine: tuple[torch.Tensor, torch.Tensor] | None, positions: dict[int, float]) -> PromptToPrompt:
    """The mode's Prompt-to-Prompt controller: refine with its token alignment (``refine``: mapper
    and alphas), else replace (with the word-swap matrix ``swap`` where the swapped words' token
    counts differ), under a reweight's equalizer when words are reweighted (``positions``), as
    the authors' ``AttentionReweight`` wraps its ``controller``."""
    if refine is not None:
        policy: PromptToPrompt = AttentionRefine(schedule, *refine, blend=blend)
    else:
        policy = AttentionReplace(schedule, swap, blend)
    return AttentionReweight(policy, equalizer(schedule.length, positions)) if positions else policy


def check_fractions(node: str, **values: float) -> None:
    """Refuse a fraction input outside [0, 1] (or not finite)."""
    for name, value in values.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise NodeInputError(node, f"input '{name}' is {value}; use a fraction between 0 and 1.")


def check_reweight(node: str, positions: dict[int, float]) -> None:
    """Refuse reweight scales that would only overflow the maps."""
    if any(abs(v) > MAX_SCALE for v in positions.values()):
        raise NodeInputError(node, f"input 'reweight': a scale of {max(positions.values(), key=abs):g} would overflow "
                                   f"the attention maps; use scales between -{MAX_SCALE:g} and {MAX_SCALE:g} "
                                   f"(paper: 2 to 5).")


def check_word_fractions(node: str, fractions: dict[int, float]) -> None:
    if any(not 0.0 <= f <= 1.0 for f in fractions.values()):
        raise NodeInputError(node, "input 'cross_replace_words': fractions are between 0 and 1 (e.g. 'square:0.4').")


def check_blend(node: str, threshold: float, start: float) -> None:
    """Refuse local blend settings under which it would not blend: a threshold no normalised map
    passes (1: the target is returned as the source) or every one does (0: no blend), a start
    at or after the last step (1)."""
    check_threshold(node, "blend_threshold", threshold, "the maps are normalised to a maximum of 1",
                    "no pixel's map is above it and the target would come out as the source",
                    "every pixel's map is above it and the local blend would keep the whole target", 0.3)
    if start >= 1.0:
        raise NodeInputError(node, f"input 'blend_start' is {start:g}, so the local blend would never start (it blends "
                                   f"from step int(f * N) of N steps); give a fraction below 1 (paper: 0.2).")


def local_blend(positions_of, words: dict, threshold: float, start: float, blocks: frozenset) -> LocalBlend:
    """The local blend of the nodes' four word inputs (``words``: input name to its comma-separated words):
    ``positions_of(input name, words, "source" or "target")`` gives their token positions in that prompt."""
    sides = (("blend_source_words", "source"), ("blend_target_words", "target"),
             ("blend_subtract_source_words", "source"), ("blend_subtract_target_words", "target"))
    found = [tuple(positions_of(name, words.get(name) or "", side)) for name, side in sides]
    return LocalBlend(found[0], found[1], threshold, start, blocks, found[2], found[3])


def check_subtract(node: str, blend: bool, subtract_source: str, subtract_target: str) -> None:
    """Refuse subtract words without a local blend (they take words out of the blend's region)."""
    if not blend and ((subtract_source or "").strip() or (subtract_target or "").strip()):
        raise NodeInputError(node, "inputs 'blend_subtract_source_words'/'blend_subtract_target_words' take words out of "
                                   "the local blend's region, but no blend words are given; give blend_source_words "
                                   "and/or blend_target_words (e.g. 'background'), or clear the subtract words.")


def check_acts(node: str, schedule: ReplaceSchedule, reweight: bool, blend: bool) -> None:
    """Refuse fractions under which the edit would never act at any step count: no map injected
    and no local blend, or reweight without cross-attention injection (it scales injected maps)."""
    cross = max([schedule.cross] + [f for _, f in schedule.words])
    words = " (and every word of cross_replace_words)" if schedule.words else ""
    if reweight and cross == 0.0:
        raise NodeInputError(node, f"input 'reweight' scales words' maps while cross-attention maps are injected, but "
                                   f"cross_replace is 0{words}; give cross_replace above 0 (paper: 0.8), or leave "
                                   f"reweight empty.")
    if not blend and cross == 0.0 and schedule.self_ == 0.0:
        raise NodeInputError(node, f"inputs 'cross_replace'{words} and 'self_replace' are 0, so the target would never "
                                   f"take the source's maps and {node} would never act; give cross_replace or "
                                   f"self_replace above 0 (paper: 0.8 and 0.4).")
