"""Prompt-to-Prompt's controllers as attention policies (Hertz et al., "Prompt-to-Prompt Image
Editing with Cross-Attention Control", 2023; schedule and maps in ``attention/prompt_to_prompt.py``).

As in the authors' code, one base (``AttentionControlEdit`` there, ``PromptToPrompt`` here) runs
the schedule, the self-attention replacement and the local blend, and each edit overrides one
method, the cross-attention replacement: ``AttentionReplace`` (words swapped one for one),
``AttentionRefine`` (words added or changed) and ``AttentionReweight`` (an equalizer on top of
another controller). Where the authors' ``replace_cross_attention`` maps the source's maps to
the target's, ours returns that edit as a linear map of token columns (``cross_columns``), which
lets every edit run in the host's fused attention kernel on mixed values (``value_mixes``),
with the mixes made once per layout and step pattern (``plan``) rather than per call.
"""
from __future__ import annotations

from abc import abstractmethod

import torch

from .local_blend import LocalBlend, LocalBlendMaps, blend_reader
from .maps import token_grid
from .policy import AttentionPolicy, PolicyInputError, Where, rows_from_source, source_index
from .prompt_to_prompt import ReplaceSchedule, equalizer, value_mixes


class PromptToPrompt(AttentionPolicy[LocalBlendMaps]):
    """On both attention kinds of the pair: in the conditional chunk, the target takes the
    source's maps when the schedule says so; everything else is plain attention. With a local
    blend, cross-attention calls at its blocks also add both rows' maps (the target's as edited)
    to the run's ``LocalBlendMaps`` (the per-run state)."""

    def __init__(self, schedule: ReplaceSchedule, blend: LocalBlend | None = None):
        self.schedule, self.blend = schedule, blend
        # per call layout, device, dtype and word pattern (see plan()); one dict for all the layers
        self.plans: dict = {}

    @property
    def keeps_state(self) -> bool:
        return self.blend is not None

    def make_state(self) -> LocalBlendMaps | None:
        return None if self.blend is None else self.blend.maps()

    @abstractmethod
    def cross_columns(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The edit of the target's cross-attention maps as ``(E_s, E_t)``, float32 ``[M, M]`` on
        ``device``: edited = ``P_s @ E_s + P_t @ E_t`` (``E_t`` None: nothing of the target's own
        map); the authors' ``replace_cross_attention``."""

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where,
                  state: LocalBlendMaps | None) -> torch.Tensor:
        latent_tokens = where.latent_hw[0] * where.latent_hw[1]
        if not where.cross:
            return self.replace_self_attention(q, k, v, where, latent_tokens)
        inject = self.schedule.injects("cross", where.step, where.steps, q.shape[1], latent_tokens)
        blend = state if self.blend is not None and where.block in self.blend.blocks else None
        if not inject and blend is None:
            return where.attend(q, k, v)
        if blend is None:   # the edit without its maps: one fused attention call (value_mixes)
            return self.fused(q, k, v, where)
        # The blend words' maps without the target's edited maps, read in the same call: rows with
        # the source's queries and keys whose values are the word columns (per head, channel 0 the
        # source's words, channel 1 the target's through A) and, where the target keeps part of its
        # own maps (B) or nothing is injected, rows with its own on B's columns; their outputs are
        # summed over the run's calls as they are and read into maps once a step (LocalBlendMaps).
        if inject:
            index, own, mixes, extra_rows = self.plan(where, v)
            vv = v if extra_rows is None else v.index_select(0, own)
            values = vv if mixes is None else torch.bmm(mixes, vv)
        else:
            index, extra_rows, values = None, None, v
        qk_index, blend_values, reader = self.blend_rows(blend, v, where, inject, index)
        out = where.attend(q.index_select(0, qk_index), k.index_select(0, qk_index),
                           torch.cat([values, blend_values]))
        main = values.shape[0]
        blend.add_rows(out[main:], reader, 0, token_grid(where.latent_hw, q.shape[1]))
        if extra_rows is None:
            return out[:main]
        return out[:q.shape[0]].index_add(0, extra_rows, out[q.shape[0]:main])

    def replace_self_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where,
                               latent_tokens: int) -> torch.Tensor:
        """The target takes the source's maps: its row attends with the source's queries and keys
        on its own values, in the same single call as every other row (no maps held; at SDXL
        1024 px one row's would be 0.7 GB)."""
        if self.schedule.injects("self", where.step, where.steps, q.shape[1], latent_tokens):
            q, k = rows_from_source(where, q, k)
        return where.attend(q, k, v)

    def mixes(self, words: torch.Tensor | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(A, B)`` of the edit at a step's per-word pattern ``words`` (``value_mixes``)."""
        return value_mixes(self.cross_columns(device), words)

    def plan(self, where: Where, v: torch.Tensor) -> tuple:
        """(query/key row index, value row index, value mixes or None, extra target rows or None) of a fused cross-attention
        call (``attention/prompt_to_prompt.value_mixes``): the conditional target rows take their
        source's queries and keys, their values become ``A @ V_t``, and where the target keeps
        part of its own maps an extra row per target attends with its own queries and keys on
        ``B @ V_t`` (added to its row after the call). A constant of the run's layout and the
        step's per-word pattern, made on the values' device and dtype once."""
        pattern = self.schedule.word_pattern(where.step, where.steps)
        key = (where.chunks, v.shape[0], v.shape[1], v.device, v.dtype, pattern)
        plan = self.plans.get(key)
        if plan is None:
            length = v.shape[1]
            a, b = self.mixes(None if pattern is None else torch.tensor(pattern, device=v.device), v.device)
            repeats = context_repeats(length, self.schedule.length)
            a, b = (None if m is None else torch.block_diag(*[m] * repeats) for m in (a, b))
            frames = where.rows // 2   # a clip's pair in blocks: rows F..2F-1 of a chunk are its targets
            targets = [c * where.rows + frames + f for c, kind in enumerate(where.chunks) if kind == 0
                       for f in range(frames)]
            extra = tuple(targets) if b is not None else ()
            index = source_index(where.chunks, where.rows, v.device, (0,), extra)
            mixes = None
            if not self.plain or b is not None:
                mixes = torch.eye(length, device=v.device).repeat(len(index), 1, 1)
                mixes[targets] = a
                if b is not None:
                    mixes[v.shape[0]:] = b
                mixes = mixes.to(v.dtype)
            # (a call of unconditional rows alone, as Noise Map Guidance makes, has no target to add to)
            extra_rows = torch.tensor(targets, dtype=torch.long, device=v.device) if b is not None and targets else None
            own = torch.tensor(list(range(v.shape[0])) + list(extra), dtype=torch.long, device=v.device)   # each row's own
            plan = self.plans[key] = (index, own, mixes, extra_rows)
        return plan

    @property
    def plain(self) -> bool:
        """Whether the edit takes the source's maps as they are (``E_s = I``, ``E_t`` None): the
        fused call then needs no value mix."""
        return False

    def fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where) -> torch.Tensor:
        """The call's output with the target rows edited (``plan``): one host attention call."""
        index, own, mixes, extra_rows = self.plan(where, v)
        vv = v if extra_rows is None else v.index_select(0, own)
        out = where.attend(q.index_select(0, index), k.index_select(0, index), vv if mixes is None else torch.bmm(mixes, vv))
        return out if extra_rows is None else out[:q.shape[0]].index_add(0, extra_rows, out[q.shape[0]:])

    def blend_rows(self, blend: LocalBlendMaps, v: torch.Tensor, where: Where, inject: bool,
                   index: torch.Tensor | None) -> tuple:
        """The blend rows of a cross-attention call (``attention``): the query/key row index (the
        call's own ``index``, or every row where nothing is injected, then each conditional pair's
        source row and, where the target's own maps count, its target row), the rows' values
        ``[blend rows, context, channels]`` (each head's channels 0 and 1, with subtract words 0-3:
        ``blend_columns``), the reader that turns their output into the pairs' maps
        (``LocalBlendMaps.add_rows``). Made once per layout, step pattern and device."""
        pattern = self.schedule.word_pattern(where.step, where.steps) if inject else "own"
        key = ("blend rows", tuple(map(tuple, blend.positions)), pattern, where.chunks, v.shape, v.device, v.dtype)
        made = self.plans.get(key)
        if made is None:
            from_source, from_own = self.blend_columns(blend, v, where, inject)
            batch, length, channels = v.shape
            heads, count = where.heads, blend.count
            if channels // heads < count:
                raise ValueError(f"local blend: {count} word maps need heads of at least {count} channels, not "
                                 f"{channels // heads}")
            sources = [c * where.rows for c, kind in enumerate(where.chunks) if kind == 0]
            n = len(sources)
            columns = [from_source] + ([] if from_own is None else [from_own])
            rows = torch.zeros(len(columns), length, heads, channels // heads, device=v.device)
            for i, c in enumerate(columns):
                rows[i, :, :, :count] = c[:, None, :]
            values = rows.flatten(2).repeat_interleave(n, 0).to(v.dtype)   # [sources' rows, then targets']
            reader = blend_reader(n, heads, channels // heads, from_own is not None, v.device, count)
            own_rows = [s + 1 for s in sources] if from_own is not None else []
            main = index if index is not None else torch.arange(batch, device=v.device)
            qk_index = torch.cat([main, torch.tensor(sources + own_rows, dtype=torch.long, device=v.device)])
            made = self.plans[key] = (qk_index, values, reader)
        return made

    def blend_columns(self, blend: LocalBlendMaps, v: torch.Tensor, where: Where, inject: bool) -> tuple:
        """``([M, count], [M, count] or None)`` float32: the columns that, multiplied with the source's and
        the target's own maps and summed, give the local blend its word maps. Column 0: the source's
        words in the source's maps; column 1: the target's words in the target's maps as edited,
        ``P_s A + P_t B`` (or its own maps where nothing is injected); columns 2 and 3 the same for the
        subtract words. Made once per run's blend words, step pattern and device."""
        pattern = self.schedule.word_pattern(where.step, where.steps) if inject else "own"
        key = ("blend", tuple(map(tuple, blend.positions)), pattern, v.shape[1], v.device)
        columns = self.plans.get(key)
        if columns is None:
            length = self.schedule.length
            words = blend.word_columns(length, v.device)
            source, target = words[:, 0::2], words[:, 1::2]   # [M, groups]: the blend words, the subtract words

            def interleaved(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:   # source, target, source, ...
                return torch.stack([even, odd], 2).flatten(1)

            zero = torch.zeros_like(source)
            if not inject:
                columns = (interleaved(source, zero), interleaved(zero, target))
            else:
                a, b = self.mixes(None if pattern is None else torch.tensor(pattern, device=v.device), v.device)
                columns = (interleaved(source, a @ target), None if b is None else interleaved(zero, b @ target))
            repeats = context_repeats(v.shape[1], length)   # every copy of a repeated context: the words' whole maps
            columns = tuple(None if c is None else c.repeat(repeats, 1) for c in columns)
            self.plans[key] = columns
        return columns


class AttentionReplace(PromptToPrompt):
    """Words swapped one for one (the authors' ``AttentionReplace``): the target's cross-attention
    maps are the source's, through the word-swap matrix ``swap`` when the swapped words' token
    counts differ (a word's tokens take the source word's maps, spread evenly)."""

    def __init__(self, schedule: ReplaceSchedule, swap: torch.Tensor | None = None, blend: LocalBlend | None = None):
        super().__init__(schedule, blend)
        self.swap = swap

    @property
    def plain(self) -> bool:
        return self.swap is None

    def cross_columns(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = dict(device=device, dtype=torch.float32)
        return (self.swap.to(**f) if self.swap is not None else torch.eye(self.schedule.length, **f)), None


class AttentionRefine(PromptToPrompt):
    """Words added or changed (the authors' ``AttentionRefine``): target tokens aligned with source
    tokens (``mapper``, ``alphas`` 1; ``attention/align.py``) take the source's maps, new tokens
    keep their own."""

    def __init__(self, schedule: ReplaceSchedule, mapper: torch.Tensor, alphas: torch.Tensor,
                 blend: LocalBlend | None = None):
        super().__init__(schedule, blend)
        self.mapper, self.alphas = mapper, alphas

    def cross_columns(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        length = self.schedule.length
        alphas = self.alphas.to(device=device, dtype=torch.float32)
        gather = torch.zeros(length, length, device=device)
        gather[self.mapper.to(device).long(), torch.arange(length, device=device)] = 1.0
        return gather * alphas[None, :], torch.diag(1 - alphas)


class AttentionReweight(PromptToPrompt):
    """Chosen tokens' maps scaled (the authors' ``AttentionReweight``: an equalizer over the context
    applied after the controller it wraps, ``base``, with no renormalisation)."""

    def __init__(self, base: PromptToPrompt, equalizer: torch.Tensor):
        super().__init__(base.schedule, base.blend)
        self.base, self.equalizer = base, equalizer

    def cross_columns(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        source, own = self.base.cross_columns(device)
        eq = self.equalizer.to(device=device, dtype=torch.float32)[None, :]
        return source * eq, None if own is None else own * eq


def context_repeats(tokens: int, length: int) -> int:
    """How many times the prompts' ``length``-token context repeats in a cross-attention call of
    ``tokens`` context tokens: the host repeats a cond to the least common multiple of the token
    lengths it batches (a negative prompt longer than one CLIP window: 154 tokens, the pair's 77
    twice), and an edit of the ``length`` columns acts on each copy alike. Refuses another length."""
    if tokens % length:
        raise PolicyInputError(f"the cross-attention context has {tokens} tokens, not the source and target "
                               f"prompts' {length} (or a multiple, as the host batches a longer negative prompt); "
                               f"sample the CONDITIONING pair from this node.")
    return tokens // length


MODES = ("replace", "refine")   # the nodes' mode: AttentionReplace or AttentionRefine


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
