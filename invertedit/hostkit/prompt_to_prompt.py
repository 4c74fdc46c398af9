"""Prompt-to-Prompt inside the host (math in ``attention/``): the attention replace patch of a
source/target pair, the local blend's post-CFG step, and the per-run wrapper that gives each
sampling run a fresh local blend state. Attention Inject wires them; Plug-and-Play reuses the patch."""
from __future__ import annotations

import logging

import comfy.model_patcher
import torch

from ..attention.local_blend import LocalBlendMaps, blend_latents, blend_start
from ..attention.maps import token_grid
from ..attention.prompt_to_prompt import ReplaceSchedule, cross_steps, self_steps, value_mixes
from ..inversion.solver import denoised_onto, euler_step
from .attention_maps import host_attention, patch_maps
from .errors import NodeInputError
from .pair import (SOURCE_ON_TRAJECTORY, TARGET_ONLY, PairRun, least_fraction, pair_rows, rows_from_source,
                   source_index)
from .steps import post_cfg_step, sampling_step, step_at


NAME = "Attention Inject"   # the node these patches belong to, for messages

BLEND_KEY = "invertedit_local_blend"   # transformer_options key of the running local blend


class PromptToPromptPatch:
    """attn1/attn2 replace patch: in the conditional chunk, row pair (source, target), the target
    takes the source's maps when the schedule says so; everything else is plain attention. With
    a local blend running, cross-attention calls at ``blend_blocks`` also add both rows' maps
    (the target's as edited) to the run's ``LocalBlendMaps``."""

    def __init__(self, schedule: ReplaceSchedule, kind: str, mapper=None, alphas=None, scales=None,
                 swap=None, blend_blocks: frozenset = frozenset(), plans: dict | None = None):
        self.schedule, self.kind = schedule, kind
        self.mapper, self.alphas = mapper, alphas   # refine's token alignment (cross-attention only)
        self.scales = scales                        # reweight's equalizer (cross-attention only)
        self.swap = swap                            # replace's word-swap matrix when token counts differ
        self.blend_blocks = blend_blocks
        # per call layout, device, dtype and word pattern (see plan()); one dict for all the layers of a node
        self.plans: dict = {} if plans is None else plans

    def plan(self, chunks: list, v: torch.Tensor, step: int, steps: int) -> tuple:
        """(query/key row index, value row index, value mixes or None, extra target rows or None) of a fused cross-attention
        call (``attention/prompt_to_prompt.value_mixes``): the conditional target rows take their
        source's queries and keys, their values become ``A @ V_t``, and where the target keeps
        part of its own maps an extra row per target attends with its own queries and keys on
        ``B @ V_t`` (added to its row after the call). A constant of the run's layout and the
        step's per-word pattern, made on the values' device and dtype once."""
        pattern = self.schedule.word_pattern(step, steps)
        key = (tuple(chunks), v.shape[0], v.shape[1], v.device, v.dtype, pattern)
        plan = self.plans.get(key)
        if plan is None:
            length = v.shape[1]
            words = None if pattern is None else torch.tensor(pattern, device=v.device)
            a, b = value_mixes(self.schedule.length, self.scales, words, self.swap,
                               None if self.mapper is None else (self.mapper, self.alphas), device=v.device)
            repeats = context_repeats(length, self.schedule.length)
            a, b = (None if m is None else torch.block_diag(*[m] * repeats) for m in (a, b))
            targets = [2 * c + 1 for c, kind in enumerate(chunks) if kind == 0]
            extra = tuple(targets) if b is not None else ()
            index = source_index(chunks, 2, v.device, (0,), extra)
            plain = b is None and self.scales is None and self.swap is None and self.mapper is None
            mixes = None
            if not plain:
                mixes = torch.eye(length, device=v.device).repeat(len(index), 1, 1)
                mixes[targets] = a
                if b is not None:
                    mixes[v.shape[0]:] = b
                mixes = mixes.to(v.dtype)
            extra_rows = torch.tensor(targets, device=v.device) if b is not None else None
            own = torch.tensor(list(range(v.shape[0])) + list(extra), device=v.device)   # the values: each row's own
            plan = self.plans[key] = (index, own, mixes, extra_rows)
        return plan

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        chunks, rows = pair_rows(q, extra_options, NAME)
        if rows == 1:   # a call of target rows only (SkipUnusedSource): nothing to inject from
            return host_attention(q, k, v, extra_options)
        step, steps = sampling_step(extra_options)
        latent_hw = tuple(extra_options["original_shape"][-2:])
        inject = self.schedule.injects(self.kind, step, steps, q.shape[1], latent_hw[0] * latent_hw[1])
        if self.kind == "self":
            # The target takes the source's maps: its row attends with the source's queries and
            # keys on its own values, in the same single call as every other row (no maps held;
            # at SDXL 1024 px one row's would be 0.7 GB).
            return host_attention(*rows_from_source(chunks, rows, q, k) if inject else (q, k), v, extra_options)
        blend = extra_options.get(BLEND_KEY) if tuple(extra_options.get("block", ())) in self.blend_blocks else None
        if not inject and blend is None:
            return host_attention(q, k, v, extra_options)
        if blend is None:   # the edit without its maps: one fused attention call (value_mixes)
            return self.fused(q, k, v, chunks, step, steps, extra_options)
        out = self.fused(q, k, v, chunks, step, steps, extra_options) if inject else host_attention(q, k, v, extra_options)
        from_source, from_own = self.blend_columns(blend, v, step, steps, inject)
        for c, kind in enumerate(chunks):
            if kind != 0:   # conditional rows: the paper's local blend reads these only
                continue
            s = c * rows
            # The blend words' maps without the target's edited maps: the source's maps times the
            # word columns give the source's words and (through A) the target's edited ones; the
            # target's own maps are computed only where it keeps part of them (B) or nothing is injected.
            words = (patch_maps(q[s:s + 1], k[s:s + 1], extra_options, dtype=torch.float32)[0] @ from_source).sum(0)
            if from_own is not None:
                own = patch_maps(q[s + 1:s + 2], k[s + 1:s + 2], extra_options, dtype=torch.float32)[0]
                words = words + (own @ from_own).sum(0)
            blend.add(words.T, heads, token_grid(latent_hw, q.shape[1]))
        return out

    def fused(self, q, k, v, chunks, step, steps, extra_options):
        """The call's output with the target rows edited (``plan``): one host attention call."""
        index, own, mixes, extra_rows = self.plan(chunks, v, step, steps)
        vv = v if extra_rows is None else v.index_select(0, own)
        out = host_attention(q.index_select(0, index), k.index_select(0, index),
                             vv if mixes is None else torch.bmm(mixes, vv), extra_options)
        return out if extra_rows is None else out[:q.shape[0]].index_add(0, extra_rows, out[q.shape[0]:])

    def blend_columns(self, blend, v: torch.Tensor, step: int, steps: int, inject: bool) -> tuple:
        """``([M, 2], [M, 2] or None)`` float32: the columns that, multiplied with the source's and
        the target's own maps and summed, give the local blend its two rows' word maps. Column 0:
        the source's words in the source's maps; column 1: the target's words in the target's
        maps as edited, ``P_s A + P_t B`` (or its own maps where nothing is injected). Made once
        per run's blend words, step pattern and device."""
        pattern = self.schedule.word_pattern(step, steps) if inject else "own"
        key = ("blend", tuple(map(tuple, blend.positions)), pattern, v.shape[1], v.device)
        columns = self.plans.get(key)
        if columns is None:
            length = self.schedule.length
            words = blend.word_columns(length, v.device)
            source, target = words[:, :1], words[:, 1:]
            zero = torch.zeros_like(source)
            if not inject:
                columns = (torch.cat([source, zero], 1), torch.cat([zero, target], 1))
            else:
                alphas = None if pattern is None else torch.tensor(pattern, device=v.device)
                a, b = value_mixes(length, self.scales, alphas, self.swap,
                                   None if self.mapper is None else (self.mapper, self.alphas), device=v.device)
                columns = (torch.cat([source, a @ target], 1), None if b is None else torch.cat([zero, b @ target], 1))
            repeats = context_repeats(v.shape[1], length)   # every copy of a repeated context: the words' whole maps
            columns = tuple(None if c is None else c.repeat(repeats, 1) for c in columns)
            self.plans[key] = columns
        return columns


def context_repeats(tokens: int, length: int) -> int:
    """How many times the prompts' ``length``-token context repeats in a cross-attention call of
    ``tokens`` context tokens: the host repeats a cond to the least common multiple of the token
    lengths it batches (a negative prompt longer than one CLIP window: 154 tokens, the pair's 77
    twice), and an edit of the ``length`` columns acts on each copy alike. Refuses another length."""
    if tokens % length:
        raise NodeInputError(NAME, f"the cross-attention context has {tokens} tokens, not the source and target "
                                   f"prompts' {length} (or a multiple, as the host batches a longer negative prompt); "
                                   f"sample the CONDITIONING pair from this node.")
    return tokens // length


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
    correction, so the source is the corrected one, as in the reference."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        options = args["model_options"]["transformer_options"]
        blend = options.get(BLEND_KEY)
        step, steps = post_cfg_step(args)
        if blend is None or step < blend_start(self.start, steps):
            return denoised
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
    """OUTER_SAMPLE wrapper: the pair editors' run checks (``PairRun``), a fresh local blend state
    for each sampling run (node outputs are cached and re-used), and one log line with the step
    counts the run will use."""

    node = NAME

    def __init__(self, schedule: ReplaceSchedule, blend: tuple[list[int], list[int], float, float] | None,
                 source: list, reweight: bool = False):
        super().__init__(source)
        self.schedule, self.blend, self.reweight = schedule, blend, reweight

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
        guider = executor.class_obj
        original = guider.model_options
        steps = len(sigmas) - 1
        self.check(guider, steps)
        first, stop = self_steps(self.schedule.self_start, self.schedule.self_, steps)
        note = (f"{NAME}: {steps} steps: cross-attention maps injected in the first "
                f"{cross_steps(self.schedule.cross, steps)}, self-attention in steps {first} to {stop - 1}")
        try:
            guider.model_options = comfy.model_patcher.create_model_options_clone(original)
            if self.blend is not None:
                source, target, threshold, start = self.blend
                guider.model_options["transformer_options"][BLEND_KEY] = LocalBlendMaps(source, target, threshold)
                note += f", local blend after each step from step {blend_start(start, steps)}"
            logging.info(note)
            return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        finally:
            guider.model_options = original

