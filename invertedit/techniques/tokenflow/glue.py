"""TokenFlow inside the host (math in ``propagation.py``): a patched clone of the MODEL that the
host's stock KSamplerAdvanced samples on the clip's inverted LATENT, in one sampling run.

Every model call the sampler makes at a step (its chunks: conditional, unconditional) becomes two
UNet calls inside the model wrapper (``TokenFlowStep``, the host's APPLY_MODEL wrapper):
1. the pivotal pass on the step's keyframes, rows ``[source keyframes, each chunk's keyframes]``
   (the source rows are the inversion's trajectory at this step, under the source prompt, as the
   authors load the source's inverted latents at every timestep): every self-attention is the
   keyframes' extended attention, with Plug-and-Play's query/key injection on the decoder's layers
   from its fourth block, and each layer's outputs and the source's self-attention inputs are kept
   for the call;
2. the propagation pass on every frame, rows ``[source frames, each chunk's frames]``: every
   self-attention output is the keyframes' gathered through the nearest-neighbour field of the
   source's features and blended; its chunks' rows are the call's output.
Plug-and-Play's feature injection acts in both passes as the authors' ``register_conv_injection``:
the edited rows take the source rows' residual features of the decoder's fourth block's ResBlock
(SD1.5: output block 4), through a hook the host kit places for the two UNet calls only.

Where the pack differs from the authors' code, and why: their propagation runs one UNet call per batch
of frames; here one call takes every frame (a frame's propagation reads only the keyframes' outputs,
so each frame's result is the same: the parity test compares whole runs). Their source latents come
from a 500-step DDIM inversion saved at the 50 sampling timesteps; here from the clip's inversion on
the sampling schedule itself (Apply Inversion's rule: the run follows the inversion's schedule).

The run is checked as Apply Inversion checks it (same model, schedule, latent size, no added noise)
and must take the DDIM/Euler step (ddim or euler): the source is read at the run's own steps.
"""
from __future__ import annotations

import logging
import math
from functools import partial

import torch

from ...hostkit.attention_maps import host_attention
from ...hostkit.errors import NodeInputError, check_conditioning, check_finite, check_inversion
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.inversion_patches import check_run, sampler_name, steps_as_euler
from ...hostkit.keys import INVERSION_KEY
from ...hostkit.layout import decoder_blocks, transformer_blocks
from ...hostkit.patches import (before_self_attention, on_resblock_residual, replace_attention, select_rows,
                                wrap_model_calls, wrap_runs)
from ...hostkit.sampling import check_model_family
from ...hostkit.steps import sampling_step, sigma_value
from .propagation import (TokenFlowSchedule, keyframe_attention, keyframe_draws, nearest_tokens, propagate,
                          propagation_weights)

#: transformer_options key of the model call's TokenFlow pass (``TokenFlowPass``)
PASS_KEY = "invertedit_tokenflow_pass"
STEP_KEY = "invertedit_tokenflow_step"


class TokenFlowPass:
    """One UNet pass of one model call: what its patches read and keep. ``pivotal``: the keyframes'
    pass (rows ``branches x keyframes``), else the propagation (``branches x frames``), which reads
    the pivotal pass's ``outputs`` and ``keyframe_features`` of the same call."""

    def __init__(self, pivotal: bool, branches: int, rows: int, attention: bool, features: bool, plan, group: int,
                 keyframe_features: dict, outputs: dict):
        self.pivotal, self.branches, self.rows = pivotal, branches, rows
        self.attention, self.features = attention, features     # Plug-and-Play's injections at this step
        self.plan, self.group = plan, group
        self.keyframe_features, self.outputs = keyframe_features, outputs
        self.current = None   # the source rows' self-attention input of the layer being run


def _layer(extra_options: dict) -> tuple:
    block = extra_options.get("block", ("", 0))
    return block[0], block[1], extra_options.get("block_index", 0)


def capture_features(n, context, value, extra_options):
    """attn1_patch: the source rows' self-attention input (after the norm), which the field compares."""
    call = extra_options.get(PASS_KEY)
    if call is not None:
        call.current = n[:call.rows]
    return n, context, value


class SelfAttention:
    """attn1 replace patch on every transformer block: the pivotal pass's extended attention (with
    the query/key injection on ``injected`` blocks), or the propagation."""

    def __init__(self, injected: frozenset, node: str):
        self.injected, self.node = injected, node

    def __call__(self, q, k, v, extra_options):
        call = extra_options.get(PASS_KEY)
        if call is None:   # a call that did not come through TokenFlowStep (none in a sampling run)
            return host_attention(q, k, v, extra_options)
        layer = _layer(extra_options)
        tokens, c = q.shape[1], q.shape[2]
        if call.pivotal:
            inject = call.attention and layer[:2] in self.injected
            out = keyframe_attention(q, k, v, call.branches, inject, partial(host_attention, extra_options=extra_options))
            call.keyframe_features[layer] = call.current
            call.outputs[layer] = out.reshape(call.branches, call.rows, tokens, c)
            return out
        first, second = nearest_tokens(call.current, call.keyframe_features[layer], call.plan.near, call.plan.far,
                                       call.group)
        return propagate(call.outputs[layer], first, second, call.plan).reshape(call.branches * call.rows, tokens, c)


def _with_source(context: torch.Tensor, source: torch.Tensor, rows: int) -> torch.Tensor:
    """The call's context with its first ``rows`` rows the source prompt's (both repeated to a common
    token count, as the host batches prompts of different lengths)."""
    length = math.lcm(context.shape[1], source.shape[1])
    context = context.repeat(1, length // context.shape[1], 1)
    source = source.to(context).repeat(1, length // source.shape[1], 1)
    return torch.cat([source.expand(rows, -1, -1), context[rows:]])


class TokenFlowStep:
    """APPLY_MODEL wrapper: a model call of the sampler as TokenFlow's two passes (module docstring)."""

    def __init__(self, inversion, source: torch.Tensor, schedule: TokenFlowSchedule, batch_size: int, seed: int,
                 injected_block: tuple[str, int], node: str):
        self.inversion, self.source, self.schedule, self.injected_block = inversion, source, schedule, injected_block
        self.batch_size, self.seed, self.node = batch_size, seed, node
        self.frames = inversion.trajectory.shape[1]
        self._memo: dict = {}

    def _constants(self, steps: int, device: torch.device):
        """The run's keyframes ``[steps, batches]`` and the propagation plan on ``device``: made once
        per (steps, device), a pure function of the inputs."""
        key = (steps, device)
        if key not in self._memo:
            self._memo[key] = (keyframe_draws(self.seed, steps, self.frames, self.batch_size).to(device),
                               propagation_weights(self.frames, self.batch_size, device))
        return self._memo[key]

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = list(transformer_options.get("cond_or_uncond", [0]))
        frames, rows = self.frames, x.shape[0]
        if rows != frames * len(chunks):
            raise NodeInputError(self.node, f"the sampler runs {rows // max(len(chunks), 1)} frames, the inversion "
                                            f"holds {frames}; sample the inversion's own LATENT.")
        if control is not None:
            raise NodeInputError(self.node, "a ControlNet is applied to the conditioning; TokenFlow adds source and "
                                            "keyframe rows the ControlNet has no hints for. Sample without it.")
        step, steps = sampling_step(transformer_options)
        inv = self.inversion
        source = inv.trajectory[inv.step_at(sigma_value(transformer_options.get("sigmas", t))) - inv.start_step]
        source = source.to(x)
        keyframes_all, plan = self._constants(steps, x.device)
        keyframes = keyframes_all[step]
        branches = 1 + len(chunks)
        chunk_offsets = torch.arange(len(chunks), device=x.device)[:, None] * frames
        attention = self.schedule.injects_attention(step, steps)
        features = self.schedule.injects_features(step, steps)
        kept_features, outputs = {}, {}

        def run(pivotal: bool):
            if pivotal:
                picked = (chunk_offsets + keyframes[None]).reshape(-1)
                index = torch.cat([keyframes, picked])
                x_in = torch.cat([source.index_select(0, keyframes), x.index_select(0, picked)])
                count = keyframes.shape[0]
            else:
                index = torch.cat([torch.arange(frames, device=x.device), torch.arange(rows, device=x.device)])
                x_in = torch.cat([source, x])
                count = frames
            call = TokenFlowPass(pivotal, branches, count, attention, features, plan, self.batch_size, kept_features,
                                 outputs)
            t_in = select_rows(t, index, rows)
            options = {**transformer_options, "cond_or_uncond": [0] + chunks, PASS_KEY: call,
                       "sigmas": select_rows(transformer_options.get("sigmas", t), index, rows)}
            context = _with_source(select_rows(c_crossattn, index, rows), self.source, count)
            extra = {name: select_rows(value, index, rows) for name, value in kwargs.items()}
            return executor(x_in, t_in, select_rows(c_concat, index, rows), context, None, options, **extra)

        if not features:
            run(True)
            return run(False)[frames:]
        current = {}

        def inject(h):   # the edited rows take the source rows' residual features
            count = current["rows"]
            return h[:count].repeat(branches, *([1] * (h.dim() - 1)))

        with on_resblock_residual(executor.class_obj, self.injected_block, inject):
            current["rows"] = keyframes.shape[0]
            run(True)
            current["rows"] = frames
            return run(False)[frames:]


class TokenFlowRun:
    """OUTER_SAMPLE wrapper: the run's checks before its first step (Apply Inversion's, and the DDIM/Euler step)."""

    def __init__(self, inversion, node: str):
        self.inversion, self.node = inversion, node

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        frames, rows = self.inversion.trajectory.shape[1], latent_image.shape[0]
        if rows != frames:
            raise NodeInputError(self.node, f"the inversion holds a clip of {frames} frames, but the latent being "
                                            f"sampled has {rows} rows; sample the inversion's own LATENT ({frames} "
                                            f"frames), one row per frame.")
        check_run(self.inversion, guider.model_patcher, noise, latent_image, sampler, sigmas, node=self.node,
                  cfg=guider.cfg)
        if not steps_as_euler(sampler):
            raise NodeInputError(self.node, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' does not take "
                                            f"the DDIM step TokenFlow samples with (the source is read at the run's "
                                            f"own steps); use ddim or euler.")
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)


def tokenflow(node: str, model, inversion, source: list, batch_size: int, attention: float, features: float,
              seed: int, paper: dict):
    """A clone of ``model`` that edits the inverted clip with TokenFlow. ``source``: the prompt the clip
    was inverted with; ``paper``: the paper's defaults by input name, for the messages."""
    check_model_family(model, node)
    inversion = check_inversion(node, inversion, model=model)
    frames = inversion.trajectory.shape[1]
    if frames < 2:
        raise NodeInputError(node, "input 'inversion' holds 1 frame; TokenFlow edits a clip: invert an IMAGE batch of "
                                   "2 or more frames (Load Image of an animated picture, or Get Video Components).")
    if not 1 <= batch_size <= frames:
        raise NodeInputError(node, f"input 'batch_size' is {batch_size}; the clip has {frames} frames, so give 1 to "
                                   f"{frames} (one keyframe per batch of that many frames; paper: "
                                   f"{paper['batch_size']}).")
    for name, value in (("self_attention_injection", attention), ("feature_injection", features)):
        check_finite(node, **{name: value})
        if not 0.0 <= value <= 1.0:
            raise NodeInputError(node, f"input '{name}' is {value:g}; use a fraction between 0 and 1 "
                                       f"(paper: {paper[name]:g}).")
    check_conditioning(node, "source", source, model)
    if conditioning_fingerprint(source) != inversion.fingerprint.get("positive"):
        logging.warning("%s: the source prompt is not the prompt the inversion was made with, so the source rows do "
                        "not retrace the clip; give the inversion's prompt.", node)
    m = model.clone()
    existing = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn1", {})
    if existing:
        raise NodeInputError(node, f"the input MODEL already replaces self-attention ({next(iter(existing))}), from "
                                   f"another node; TokenFlow replaces every self-attention layer. Apply it without "
                                   f"that node.")
    per_level, count = decoder_blocks(model)
    start = per_level + 1   # the decoder's fourth block (SD1.5: output block 4), as Plug-and-Play
    blocks = transformer_blocks(model)
    injected = frozenset((b, n) for b, n in blocks if b == "output" and n >= start)
    policy = SelfAttention(injected, node)
    for block, number in blocks:
        replace_attention(m, policy, "attn1", block, number)
    before_self_attention(m, capture_features)
    schedule = TokenFlowSchedule(attention, features)
    wrap_model_calls(m, STEP_KEY, TokenFlowStep(inversion, source[0][0], schedule, batch_size, seed,
                                                ("output", start), node))
    wrap_runs(m, INVERSION_KEY, TokenFlowRun(inversion, node))
    return m
