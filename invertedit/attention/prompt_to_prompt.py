"""Prompt-to-Prompt (Hertz et al., "Prompt-to-Prompt Image Editing with Cross-Attention
Control", 2023): the target branch borrows the source branch's attention maps, so the layout
(where each word is drawn, which pixels attend to which) stays while the words change.
Replace swaps words of equal token count (all maps from the source); refine adds or changes
words (aligned tokens' maps from the source, new tokens' own); reweight then scales chosen
tokens' maps (the paper's AttentionReweight: an "equalizer" over the context, no
renormalisation), strengthening (> 1) or weakening (< 1, negative to invert) a word.

A policy decides, per attention call, whether the target row's maps are the source row's, with
the step counts of the reference code (PnPInversion's controllers, the code behind the
PIE-Bench table): its cross-attention schedule has N + 1 rows, so a fraction f of N steps
injects cross-attention maps in the first ``int(f * (N + 1))`` steps; self-attention maps are
injected in steps ``int(N * s0) <= step < int(N * s1)``, in the layers whose query tokens are
at most a quarter of the latent's (32x32 of SD1.5's 64x64 latent at 512 px: every layer
coarser than the latent), a rule that follows the image size. Words of the target can have
their own cross-attention fraction (the paper's per-word schedule): each token's map column
comes from the source while its own fraction lasts, then from the target. The target keeps its
own values: in cross-attention those carry the new words.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..refusals import NodeInputError, check_threshold
from .align import refine_probs, replace_probs
from .maps import attend, attention_probs


#: Self-attention layers, as the largest share of the latent's tokens a replaced layer may have.
SELF_LAYERS = {
    "coarser than latent": 0.25,     # PnPInversion's controllers: <= 32**2 tokens at a 64x64 latent
    "latent/4 and coarser": 1 / 16,  # the original generation notebook: <= 16**2 at 64x64
    "all": 1.0,
}


def cross_steps(fraction: float, steps: int) -> int:
    """Steps whose cross-attention maps are injected for ``fraction``: ``int(fraction * (steps + 1))``,
    as the reference's ``N + 1``-row alpha table gives."""
    return int(fraction * (steps + 1))


def self_steps(start: float, end: float, steps: int) -> tuple[int, int]:
    """The ``[first, stop)`` steps whose self-attention maps are injected: ``int(N * start), int(N * end)``."""
    return int(steps * start), int(steps * end)


@dataclass(frozen=True)
class ReplaceSchedule:
    cross: float = 0.8          # fraction of the steps whose cross-attention maps are injected
    self_: float = 0.4          # fraction of the steps whose self-attention maps are injected
    self_start: float = 0.0     # fraction of the steps before self-attention injection starts
    self_layers: float = 0.25   # self-attention replaced in layers of at most this share of the latent's tokens
    words: tuple[tuple[int, float], ...] = ()   # (target token position, its own cross fraction)
    length: int = 77            # context length (tokens) of the cross-attention maps

    def injects(self, kind: str, step: int, steps: int, tokens: int, latent_tokens: int) -> bool:
        """Whether the target takes the source's maps in this call (``kind``: "cross" or "self");
        ``tokens`` are the call's query tokens, ``latent_tokens`` the latent's height x width."""
        if kind == "cross":
            return step < max(cross_steps(f, steps) for f in [self.cross] + [f for _, f in self.words])
        first, stop = self_steps(self.self_start, self.self_, steps)
        return first <= step < stop and tokens <= self.self_layers * latent_tokens

    def injects_any(self, step: int, steps: int) -> bool:
        """Whether any layer takes the source's maps at this step (the source rows are needed)."""
        first, stop = self_steps(self.self_start, self.self_, steps)
        return self.injects("cross", step, steps, 0, 1) or (first <= step < stop and self.self_layers > 0)

    def word_pattern(self, step: int, steps: int) -> tuple[float, ...] | None:
        """``word_alphas`` as Python floats, or None where every token takes the source's map (no
        per-word fractions, or all of them still running): the key of a step's fused plan."""
        if not self.words:
            return None
        default = float(step < cross_steps(self.cross, steps))
        pattern = [default] * self.length
        for position, fraction in self.words:
            pattern[position] = float(step < cross_steps(fraction, steps))
        return None if all(pattern) else tuple(pattern)

    def word_alphas(self, step: int, steps: int) -> torch.Tensor | None:
        """Per-token 1 (source's map) / 0 (own map) over the context at ``step``, or None when every
        token follows the default fraction."""
        if not self.words:
            return None
        alphas = torch.full((self.length,), float(step < cross_steps(self.cross, steps)))
        for position, fraction in self.words:
            alphas[position] = float(step < cross_steps(fraction, steps))
        return alphas


def mix_own(edited: torch.Tensor, q: torch.Tensor, k: torch.Tensor, heads: int,
            alphas: torch.Tensor | None) -> torch.Tensor:
    """The target's maps: per token column, the edited (source-derived) map where ``alphas`` is 1,
    the target row's own map where it is 0."""
    if alphas is None:
        return edited
    a = alphas.to(edited)
    return edited * a + attention_probs(q[1:2], k[1:2], heads) * (1 - a)


def replaced_maps(q: torch.Tensor, k: torch.Tensor, heads: int, equalizer: torch.Tensor | None = None,
                  alphas: torch.Tensor | None = None, mapper: torch.Tensor | None = None) -> torch.Tensor:
    """The target row's maps when it takes the source's (rows ``[0]`` source, ``[1]`` target):
    the source's maps, through a word swap's ``mapper`` when the swapped words' token counts
    differ, scaled per token by ``equalizer``, mixed per token with its own by ``alphas``."""
    probs = attention_probs(q[:1], k[:1], heads)
    if mapper is not None:
        probs = replace_probs(probs, mapper)
    if equalizer is not None:
        probs = probs * equalizer.to(probs)
    return mix_own(probs, q, k, heads, alphas)


def refined_maps(q: torch.Tensor, k: torch.Tensor, heads: int, mapper: torch.Tensor, alphas: torch.Tensor,
                 equalizer: torch.Tensor | None = None, word_alphas: torch.Tensor | None = None) -> torch.Tensor:
    """The target row's cross-attention maps under refine: the maps of target tokens aligned with
    source tokens come from the source (``attention/align.py``), new tokens keep theirs; then
    scaled per token by ``equalizer``."""
    probs = attention_probs(q[:2], k[:2], heads)
    edited = refine_probs(probs[:1], probs[1:2], mapper, alphas)
    if equalizer is not None:
        edited = edited * equalizer.to(edited)
    return mix_own(edited, q, k, heads, word_alphas)


def replace_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                   equalizer: torch.Tensor | None = None, alphas: torch.Tensor | None = None,
                   mapper: torch.Tensor | None = None) -> torch.Tensor:
    """Attention output of the target row when it uses the source's maps (``replaced_maps``)
    with its own values. Rows ``[0]`` source, ``[1]`` target; returns the target's output row."""
    return attend(replaced_maps(q, k, heads, equalizer, alphas, mapper), v[1:2])


def equalizer(length: int, positions: dict[int, float]) -> torch.Tensor:
    """Per-token scale over a ``length``-token context: ``positions`` maps token index to scale."""
    eq = torch.ones(length)
    for i, scale in positions.items():
        eq[i] = scale
    return eq


def refine_target(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mapper: torch.Tensor,
                  alphas: torch.Tensor, equalizer: torch.Tensor | None = None,
                  word_alphas: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-attention output of the target row under refine (``refined_maps``)."""
    return attend(refined_maps(q, k, heads, mapper, alphas, equalizer, word_alphas), v[1:2])


def value_mixes(columns: tuple[torch.Tensor, torch.Tensor | None],
                word_alphas: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The target row's edited maps as a linear map of the two rows' own maps: ``P_s @ A + P_t @ B``.

    Every edit (``attention/controllers.py``: a swap's ``mapper``, refine's column gather and
    blend with its own map, reweight's scale) acts on the maps' token columns only, so it is a
    pair of ``[M, M]`` matrices ``columns`` = ``(E_s, E_t)`` on each row's maps (``E_t`` None
    where the target keeps none of its own), and the per-word fractions mix the edit with the
    target's own map per column: ``A = E_s W``, ``B = E_t W + (I - W)``, ``W = diag(word_alphas)``.
    As ``(P @ A) @ V = P @ (A @ V)``, the target's output is plain attention of the source's
    queries and keys on ``A @ V_t``, plus (where it keeps part of its own map) plain attention of
    its own on ``B @ V_t``. No map is ever held, and the attention runs in the host's fused
    kernel. ``B`` is None where the target keeps none of its own map."""
    source, own = columns
    if word_alphas is None:
        return source, own
    wa = word_alphas.to(source)
    keep = torch.diag(1 - wa)
    return source * wa[None, :], keep if own is None else own * wa[None, :] + keep


def least_fraction(steps_of: Callable[[float], int]) -> float:
    """The smallest fraction (in hundredths) that ``steps_of`` turns into at least one step, for
    the messages of a schedule that acts in no step of a run; 1 where none does."""
    return next((f / 100 for f in range(1, 101) if steps_of(f / 100) >= 1), 1.0)


def idle_reason(schedule: ReplaceSchedule, steps: int, reweight: bool, blend: bool, node: str) -> str | None:
    """Why a Prompt-to-Prompt run of ``steps`` steps would never act (the message), or None: no map
    injected and no local blend (the fractions' step counts are 0 at this step count), or reweight's
    maps never injected."""
    s = schedule
    cross = max(cross_steps(f, steps) for f in [s.cross] + [f for _, f in s.words])
    first, stop = self_steps(s.self_start, s.self_, steps)
    words = " (and cross_replace_words)" if s.words else ""
    more_cross = least_fraction(lambda f: cross_steps(f, steps))
    if reweight and not cross:
        return (f"input 'reweight' scales words' maps while cross-attention maps are injected, but cross_replace "
                f"{s.cross:g}{words} injects them in none of the run's {steps} steps (the first int(f * (N + 1)) = 0); "
                f"give cross_replace {more_cross:g} or more (paper: 0.8), or sample more steps.")
    if not blend and not cross and stop <= first:
        return (f"inputs 'cross_replace' ({s.cross:g}){words} and 'self_replace' ({s.self_:g}) inject no map in a run "
                f"of {steps} steps (cross-attention maps in the first int(f * (N + 1)) = 0 steps, self-attention maps "
                f"in the first int(f * N) = 0), so {node} would never act; give cross_replace {more_cross:g} or "
                f"self_replace {least_fraction(lambda f: self_steps(0.0, f, steps)[1]):g} or more (paper: 0.8 and "
                f"0.4), or sample more steps.")
    return None


def run_note(schedule: ReplaceSchedule, steps: int, blend_from: int | None, node: str) -> str:
    """The log line of a run: the step counts it will use (``blend_from``: the local blend's first step)."""
    first, stop = self_steps(schedule.self_start, schedule.self_, steps)
    note = (f"{node}: {steps} steps: cross-attention maps injected in the first "
            f"{cross_steps(schedule.cross, steps)}, self-attention in steps {first} to {stop - 1}")
    if blend_from is not None:
        note += f", local blend after each step from step {blend_from}"
    return note


# ----------------------------------------------------------------------------- the nodes' settings

MAX_SCALE = 100.0   # reweight scales beyond this only overflow the maps


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


def check_subtract(node: str, blend: bool, subtract_source: str, subtract_target: str) -> None:
    """Refuse subtract words without a local blend (they take words out of the blend's region): no blend
    words given and none that differ between the prompts (``attention/blend_words.choose_blend_words``)."""
    if not blend and ((subtract_source or "").strip() or (subtract_target or "").strip()):
        raise NodeInputError(node, "inputs 'blend_subtract_source_words'/'blend_subtract_target_words' take words out of "
                                   "the local blend's region, but there is none: no blend words are given and no word "
                                   "differs between the prompts; give blend_source_words and/or blend_target_words "
                                   "(e.g. 'background'), or clear the subtract words.")


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
