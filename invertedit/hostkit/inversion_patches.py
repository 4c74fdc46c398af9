"""Applying an INVERSION while the host samples: the checks a run must pass (same model,
schedule, latent; a sampler that can retrace it) and each method's sampling patch, chosen by
the method table's ``Patch``."""
from __future__ import annotations

import logging
import math

import torch
from comfy.k_diffusion import sampling as k_diffusion_sampling
import comfy.patcher_extension
import comfy.sampler_helpers
from ..inversion.methods import Method
from ..inversion.methods import Patch
from ..inversion.methods import method_of
from ..inversion.record import Inversion
from ..inversion.record import InversionMismatch
from ..inversion.solver import denoised_onto
from .errors import NodeInputError
from .errors import check_finite_tensor
from .errors import check_made_with
from .inversion_sampler import InversionSampling
from .keys import INVERSION_KEY, SOURCE_ON_TRAJECTORY
from .patches import wrap_model_calls
from .steps import sigma_list, sigma_value, step_at


NAME = "Apply Inversion"

# Samplers that add fresh noise at every step: they cannot retrace a deterministic inversion.
_STOCHASTIC = ("ancestral", "sde", "ddpm", "lcm", "seeds", "sa_solver", "restart")


_EXACT = (k_diffusion_sampling.sample_euler,)   # the host's ddim and euler samplers: the inversion's own step


def source_conditioning(inversion) -> list:
    """The source prompt's CONDITIONING stored by Negative-Prompt Inversion."""
    extra = {}
    if "source.pooled" in inversion.clues:
        extra["pooled_output"] = inversion.clues["source.pooled"]
    return [[inversion.clues["source.cond"], extra]]


def steps_as_euler(sampler) -> bool:
    """Whether ``sampler`` takes the DDIM/Euler step from each prediction: the host's ddim and euler,
    and the pack's Flow Sampler with its euler solver (a sampler function marked ``euler_step``)."""
    return is_host_euler(sampler) or getattr(getattr(sampler, "sampler_function", None), "euler_step", False) is True


def is_host_euler(sampler) -> bool:
    """Whether ``sampler`` is the host's own ddim or euler sampler (KSamplerSelect's)."""
    function = getattr(sampler, "sampler_function", None)
    return any(function is f for f in _EXACT)


def sampler_name(sampler) -> str:
    fn = getattr(sampler, "sampler_function", None)
    return getattr(fn, "__name__", type(fn if fn is not None else sampler).__name__)


def checked_method(inversion: Inversion, node: str) -> Method:
    """The inversion's method, refusing a record of an unknown method or one without its clues."""
    try:
        method = method_of(inversion.method)
    except ValueError as e:
        raise NodeInputError(node, f"input 'inversion': {e}.") from None
    missing = method.missing_clues(inversion.clues)
    if missing:
        raise NodeInputError(node, f"input 'inversion' is a {method.name} inversion without its data ({', '.join(missing)}); "
                                   f"make it again with {method.made_by}.")
    return method


def check_run(inversion: Inversion, model, noise: torch.Tensor, latent: torch.Tensor, sampler,
              sigmas: torch.Tensor, node: str = "", cfg: float | None = None) -> int:
    """Raise NodeInputError unless this sampling run can reconstruct from ``inversion``.
    ``cfg``: the run's guidance scale, refused when not finite. Returns the step of the
    inversion's schedule the run starts at. Direct inversion's
    correction is exact only for the DDIM/Euler step, so it requires that sampler."""
    node = node or NAME
    check_made_with(node, inversion.fingerprint, model, "the MODEL being sampled is not the one the inversion was "
                    "made with", "Sample with the model you inverted with, or invert again with this one.")
    if cfg is not None and not math.isfinite(cfg):
        raise NodeInputError(node, f"the sampler's cfg is {cfg}; give a finite number (this inversion reconstructs at "
                                   f"cfg {inversion.settings.get('cfg', 1.0):g}, or the cfg Null-Text Optimize used).")
    method = checked_method(inversion, node)
    name = sampler_name(sampler)
    function = getattr(sampler, "sampler_function", None)
    exact = is_host_euler(sampler)
    if method.own_sampler or isinstance(function, InversionSampling):
        if not isinstance(function, InversionSampling) or function.METHOD is not method:
            wanted = f"the {method.own_sampler} node" if method.own_sampler else "the inversion's own sampler"
            raise NodeInputError(node, f"'{inversion.method}' inversions are sampled with {wanted} in "
                                       f"SamplerCustomAdvanced, and each pack sampler only with its own inversion.")
    elif any(s in name for s in _STOCHASTIC):
        raise NodeInputError(node, (
            f"sampler '{name.removeprefix('sample_')}' adds fresh noise at every step and cannot retrace an inversion; "
            f"use ddim or euler (or another deterministic sampler)."))
    elif not exact and method.exact_step_only:
        raise NodeInputError(node, (
            f"a Direct Inversion keeps the source on its trajectory only with the ddim or euler sampler; "
            f"sampler '{name.removeprefix('sample_')}' steps differently."))
    elif not exact:
        logging.info("%s: sampler '%s' is deterministic but steps differently from DDIM; reconstruction is approximate "
                     "(ddim or euler retrace the inversion).", node, name)
    if torch.count_nonzero(noise) > 0:
        raise NodeInputError(node, (
            "the sampler adds noise to the inverted latent. Set add_noise to 'disable' in KSamplerAdvanced, or use "
            "DisableNoise with SamplerCustomAdvanced (KSampler always adds noise: use KSamplerAdvanced)."))
    check_finite_tensor(node, "the latent being sampled", latent,
                        "sample the inversion's own LATENT output (a latent with NaN gives a black image).")
    frames = inversion.trajectory.shape[1]
    if frames > 1 and latent.shape[0] not in (frames, 2 * frames):
        raise NodeInputError(node, f"the inversion holds a clip of {frames} frames, but the latent being sampled has "
                                   f"{latent.shape[0]} rows; sample the inversion's own LATENT ({frames} frames) or a "
                                   f"pair editor's LATENT of it ({2 * frames} rows: source frames, then target frames).")
    try:
        inversion.check_latent(tuple(latent.shape))
        start = inversion.locate(sigmas)
    except InversionMismatch as e:
        raise NodeInputError(node, str(e)) from None
    if start > inversion.start_step:
        check_later_start(inversion, model, latent, start, node)
    return start


def check_later_start(inversion: Inversion, model, latent: torch.Tensor, start: int, node: str) -> None:
    """A run that starts later in the schedule than the inversion (KSamplerAdvanced's start_at_step
    above the inversion's) must sample the trajectory's point at that step: the inverted latent
    itself sits at the inversion's start step, and denoising it from a later (smaller) sigma
    leaves noise in the image (an over-saturated picture)."""
    point = inversion.trajectory[start - inversion.start_step].detach().float().cpu()
    x = model.model.process_latent_in(latent.detach().float().cpu())
    rows = torch.arange(x.shape[0]) % point.shape[0]
    want = point[rows]
    if float((x - want).norm()) <= 1e-3 * float(want.norm()) + 1e-6:
        return
    raise NodeInputError(node, (
        f"the run starts at step {start} (start_at_step={start}), but the latent being sampled is not the inversion's "
        f"latent at that step: the inverted latent belongs to step {inversion.start_step}, and sampling it from a later "
        f"step gives an over-saturated image. Use start_at_step={inversion.start_step}, the inversion's, or feed the "
        f"latent that matches step {start} (invert with start_at_step={start})."))


def announce_negative(inversion: Inversion, node: str) -> None:
    """Say in the log that a negative-prompt or null-text inversion replaces the run's negative
    prompt (the user's own negative prompt does not act)."""
    patch = method_of(inversion.method).patch
    if patch is Patch.SOURCE_AS_NEGATIVE:
        logging.info("%s: the run's negative prompt is replaced by the source prompt (Negative-Prompt Inversion).", node)
    elif patch is Patch.NULL_TEXT:
        logging.info("%s: the run's negative prompt is replaced at every step by the null text Null-Text Optimize "
                     "found (its length must match the negative it started from).", node)


class InversionGuard:
    """OUTER_SAMPLE wrapper holding the inversion: checks each run before it starts; for a
    negative-prompt inversion, the run's negative conditioning becomes the source prompt."""

    def __init__(self, inversion: Inversion):
        self.inversion = inversion

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        check_run(self.inversion, guider.model_patcher, noise, latent_image, sampler, sigmas, cfg=guider.cfg)
        announce_negative(self.inversion, NAME)
        if method_of(self.inversion.method).patch is Patch.SOURCE_AS_NEGATIVE and "negative" in guider.conds:
            guider.conds["negative"] = comfy.sampler_helpers.convert_cond(source_conditioning(self.inversion))
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)


class DirectCorrection:
    """Post-CFG function of a direct inversion: the source rows' prediction is replaced by the
    one whose DDIM step lands on the trajectory at the run's next sigma (``inversion/solver.py``'s ``denoised_onto``).
    The source rows are the first rows of the batch, as many as the inversion has."""

    def __init__(self, inversion: Inversion):
        self.inversion = inversion

    def __call__(self, args: dict) -> torch.Tensor:
        inv = self.inversion
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        run = args["model_options"]["transformer_options"]["sample_sigmas"]
        k, _ = step_at(run, sigma)
        sigma_next = sigma_list(run)[k + 1]
        target = inv.trajectory[-1] if sigma_next == 0.0 else inv.trajectory[inv.step_at(sigma_next) - inv.start_step]
        rows = target.shape[0]
        out = denoised.clone()
        out[:rows] = denoised_onto(x[:rows], sigma[0], run[k + 1].to(x), target.to(x))
        return out


class NullTextSwap:
    """APPLY_MODEL wrapper of a null-text inversion: the unconditional rows' context becomes the
    embedding optimised for the current step (rows found by ``cond_or_uncond``, never by position)."""

    def __init__(self, inversion: Inversion):
        self.inversion = inversion

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = transformer_options.get("cond_or_uncond", [])
        inv = self.inversion
        if 1 in chunks and c_crossattn is not None:
            j = inv.step_at(sigma_value(transformer_options.get("sigmas", t))) - inv.start_step
            nulls = inv.clues["null_text"]
            if 0 <= j < len(nulls):
                emb = nulls[j].to(device=c_crossattn.device, dtype=c_crossattn.dtype)
                if emb.shape[1:] != c_crossattn.shape[1:]:
                    raise NodeInputError(NAME, f"the negative prompt's embedding is {tuple(c_crossattn.shape[1:])}, the "
                                               f"optimised null text {tuple(emb.shape[1:])}: sample with the negative "
                                               f"prompt Null-Text Optimize used.")
                rows = x.shape[0] // len(chunks)
                c_crossattn = c_crossattn.clone()
                for k, kind in enumerate(chunks):
                    if kind == 1:
                        c_crossattn[k * rows:(k + 1) * rows] = emb.expand(rows, -1, -1)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


def _direct(m, inversion: Inversion) -> None:
    # First in the list: later post-CFG edits (Latent Blend, local blend) must see the corrected source.
    m.model_options.setdefault("sampler_post_cfg_function", []).insert(0, DirectCorrection(inversion))
    # Editors that only read the source's attention may leave out its rows (SkipUnusedSource).
    m.model_options.setdefault("transformer_options", {})[SOURCE_ON_TRAJECTORY] = inversion.trajectory.shape[1]


def _null_text(m, inversion: Inversion) -> None:
    wrap_model_calls(m, INVERSION_KEY, NullTextSwap(inversion))


# How each method patches sampling (the source-as-negative swap happens in InversionGuard, per run).
SAMPLING_PATCHES = {Patch.NONE: lambda m, inversion: None, Patch.SOURCE_AS_NEGATIVE: lambda m, inversion: None,
                    Patch.ONTO_TRAJECTORY: _direct, Patch.NULL_TEXT: _null_text}
