"""KV-Edit (Zhu et al. 2025, "KV-Edit: Training-Free Image Editing for Precise Background
Preservation", ``Xilluill/KV-Edit``): while the image is inverted, every block's image keys and
values are kept for every step; while the edit samples back, only the masked tokens are made
anew: in every block the background's keys and values are the kept ones, and at every step the
background's latent is the inversion's, so the background stays the image's own.

As the authors' code does it (``models/kv_edit.py``, ``flux/modules/layers.py``):
- A kept entry belongs to a step of the sampling schedule: the inversion's evaluation at schedule
  point ``j`` is kept for step ``j - 1`` (their ``info['t'] = t_prev``), as RF-Solver-Edit keys
  its values (``attention/policy.py``'s ``shared_key``); the edit at step ``i`` uses it, and the background's
  latent of the inversion at point ``i + 1``; the edit starts at the latent kept for its first step.
- Tokens: a token is edited where any latent cell of its patch is inside the mask (the mask
  scaled to the latent bilinearly and made 1 where above 0); inside an edited token the unmasked
  cells still take the inversion's latent.
- ``attn_scale`` (their default 1) adds a bias to the background's key columns in the edit;
  ``attn_mask`` (their default off) keeps the masked and the background tokens from attending to
  each other while inverting (the text attends to all and is attended by all).

What differs in the host, not in what is computed for the edited tokens: their edit runs the
transformer on the text and the edited tokens only; the host's runs every token. The background
tokens' own outputs never reach the edited ones (every block takes the background's keys and
values from the inversion) and are replaced by the image's latent, so the edited tokens get the
same values. So, as theirs, the host kit runs each block on the text and the edited tokens alone
(``glue.py``'s ``KVEditSubset``), and their attention takes the background's keys and values
from the inversion, appended after their own (``KVEdit``'s call on a subset: the kept background's columns
alone, selected once a call); where a block is called on every token (another node's
attention mask), the queries of the text and the edited tokens alone are attended and the background's
rows of the output are zero. Either way the arithmetic falls with the region, as in their code. Their
keys are kept before the rotary embedding and rotated again while editing; the host's attention gets
them rotated, at the same positions, so the kept ones are kept rotated.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch

from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError, shared_key
from ...attention.regions import edited_tokens, latent_mask  # noqa: F401 (KV-Edit's, handed on)
from .prefetch import AheadOfUse

Block = tuple[str, int]
KVKey = tuple[int, str, int]   # (sampling step, block kind, block index)


def inversion_bias(text: int, edited: torch.Tensor, dtype: torch.dtype, references: int = 0) -> torch.Tensor:
    """Their ``attn_mask`` while inverting, as an additive bias ``[1, 1, L, L]``: text rows attend
    to every token; an edited token to the text and the edited tokens; a background token to the
    text and the background. An instruction editor's ``references`` tokens (after the image's) are
    as the text: they attend to every token and every token attends to them."""
    device = edited.device
    shared = torch.ones(references, dtype=torch.bool, device=device)
    is_edit = torch.cat((torch.zeros(text, dtype=torch.bool, device=device), edited, ~shared))
    is_text = torch.cat((torch.ones(text, dtype=torch.bool, device=device), torch.zeros_like(edited), shared))
    allowed = is_text[:, None] | is_text[None, :] | (is_edit[:, None] == is_edit[None, :])
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
    return bias[None, None]


def background_bias(text: int, edited: torch.Tensor, scale: float, dtype: torch.dtype,
                    references: int = 0) -> torch.Tensor:
    """Their ``attn_scale`` while editing: ``scale`` added to every query's logits of the
    background's keys, ``[1, 1, 1, L]`` (the text's and the ``references`` tokens' unbiased)."""
    columns = torch.cat((torch.zeros(text, dtype=torch.bool, device=edited.device), ~edited,
                         torch.zeros(references, dtype=torch.bool, device=edited.device)))
    return (columns.to(dtype) * scale)[None, None, None]


def kv_bytes(heads_dim: int, tokens: int, blocks: int, steps: int, element: int) -> int:
    """Memory of the kept keys and values: per step and block, two tensors of the call's tokens."""
    return 2 * heads_dim * tokens * blocks * steps * element


@dataclass
class KeepState:
    """A run of ``KeepKeysValues``: checked once (memory, the mask's size), with the attention mask's
    bias where the ``attn_mask`` option keeps the region and the background apart."""
    checked: bool = False
    bias: torch.Tensor | None = None


class KeepKeysValues(AttentionPolicy[dict]):
    """While inverting: every call at a schedule point keeps its keys and values in
    ``sink`` (through ``keep``) for the step before it; with ``edited`` (their ``attn_mask``) the
    masked and the background tokens do not attend to each other. ``budget`` (bytes, or None):
    where the kept tensors stay on the model's device, the first call checks that ``steps`` of
    them fit."""

    pair = False
    reads_references = True   # an instruction editor's reference tokens are kept with the image's

    def __init__(self, sink: dict, keep: Callable[[torch.Tensor], torch.Tensor], blocks: int, steps: int,
                 edited: torch.Tensor | None = None, budget: int | None = None, element: int | None = None,
                 budget_where: str = "the device", budget_fix: str = "set keep_values_on to cpu (the authors' offload)",
                 reference: bool = False):
        self.sink, self.keep, self.blocks, self.steps = sink, keep, blocks, steps
        self.reference = reference   # an instruction editor's reference tokens kept too (else the text's and image's)
        self.edited, self.budget, self.element = edited, budget, element   # element: bytes a kept value takes
        self.budget_where, self.budget_fix = budget_where, budget_fix     # where the budget is free, what fits

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> KeepState:
        return KeepState()

    def attention(self, q, k, v, where: JointWhere, state: KeepState):
        if not state.checked:
            self._check(k, where, state)
        step, half = shared_key(where, inverting=True)
        if half:
            raise PolicyInputError("KV-Edit keeps the keys and values of Euler's evaluations; invert with solver "
                                   "euler (the authors').")
        if step >= 0:
            kept = k.shape[2] - (0 if self.reference else where.references)
            self.sink[(step, *where.block)] = (self.keep(k[:, :, :kept]), self.keep(v[:, :, :kept]))
        return where.attend(q, k, v, mask=state.bias)

    def _check(self, k: torch.Tensor, where: JointWhere, state: KeepState) -> None:
        tokens = where.grid[0] * where.grid[1]
        kept = k.shape[2] - (0 if self.reference else where.references)
        need = kv_bytes(k.shape[1] * k.shape[3], kept * k.shape[0], self.blocks, self.steps,
                        self.element or k.element_size())
        if not torch.compiler.is_compiling():   # a log call inside a graph TorchCompileModel traces would break it
            logging.getLogger(__name__).info(
                "KV-Edit keeps the keys and values of %d steps x %d blocks x %d tokens: %.2f GiB%s", self.steps,
                self.blocks, kept, need / 2**30,
                "" if self.budget is None else f" of {self.budget / 2**30:.1f} GiB free in {self.budget_where}")
        if self.budget is not None and need > self.budget:
            raise PolicyInputError(
                f"keeping KV-Edit's keys and values needs {need / 2**30:.1f} GiB ({self.steps} steps x {self.blocks} "
                f"blocks x {kept} tokens) and {self.budget_where} has {self.budget / 2**30:.1f} GiB free; "
                f"{self.budget_fix}, or invert fewer steps or a smaller image (the keys and values grow with both).")
        if self.edited is not None:
            if self.edited.numel() != tokens:
                raise PolicyInputError(f"the attention mask covers {self.edited.numel()} tokens, the image "
                                       f"{tokens}; give the mask of this image.")
            state.bias = inversion_bias(where.text, self.edited.to(k.device), k.dtype, where.references)
        state.checked = True


@dataclass
class EditState:
    """A KV-Edit run's constants (made at its first call) and its current step (set once per model
    call by the host kit, before the blocks run)."""
    step: int = -1
    keep: torch.Tensor | None = None          # [1, 1, tokens, 1]: the text, the edited (and computed reference) tokens
                                              # keep their own
    rows: torch.Tensor | None = None          # [text + computed]: the queries attended (the text's, the edited
                                              # tokens', the reference's unless cached)
    image_rows: torch.Tensor | None = None    # [computed]: the edited (and computed reference) tokens among the
                                              # image stream's (the image's, then the reference images')
    subset: dict = field(default_factory=dict)   # (kept text, call's text) -> a call on the subset's kept columns and bias
    pe: tuple | None = None                   # (the model call's rotary embedding, its rows of the subset): the host
                                              # kit's SubsetBlock keeps it here, once per model call
    bias: torch.Tensor | None = None          # attn_scale's bias, [1, 1, 1, L], or None
    trajectory: torch.Tensor | None = None    # the glue's: the inversion's latents on the run's device ...
    cells: torch.Tensor | None = None         # ... and the mask's latent cells
    kept: AheadOfUse | None = None            # the kept keys and values, handed over a block call ahead
    text: int = -1                            # the text tokens the constants above (keep, rows, bias) are for
    by_text: dict = field(default_factory=dict)   # text tokens -> (keep, image_rows, rows, bias): Qwen-Image's text
                                              # is unpadded, so a negative prompt's call has another length


class KVEdit(AttentionPolicy[EditState]):
    """While editing: in every call the background's keys and values are those the inversion kept
    for the step (``cache``: ``(step, kind, index) -> (keys, values)`` of the call's tokens), the
    text's and the edited tokens' their own; ``scale`` biases the background's keys. The kept text
    (the source prompt's) is never used; it is kept so that one select per tensor makes the call's
    keys and values where both prompts have the same length (the host pads T5 to 256 tokens).

    On an instruction editor (Flux.1 Kontext, Qwen-Image-Edit) the calls hold ``references`` tokens of the
    reference images after the image's, as the inversion's did: they are computed in every call, as the text
    is, or with ``cache_reference`` taken from the inversion's kept keys and values for the step and not
    computed at all (RegionE's and CacheEdit's observation: what the edit does not change need not be made
    again), so that a step computes the text and the edited tokens alone."""

    pair = False
    reads_references = True

    def __init__(self, cache: dict[KVKey, tuple[torch.Tensor, torch.Tensor]], edited: torch.Tensor, scale: float,
                 references: int = 0, cache_reference: bool = False, kept_reference: bool = False):
        self.cache, self.edited, self.scale = cache, edited, scale
        self.references, self.cache_reference = references, cache_reference
        #: the inversion kept the reference's keys and values (Flow Invert's keep_reference), which the cache reads
        self.kept_reference = kept_reference or cache_reference
        self.edited_rows = edited.nonzero().flatten()   # made with the node, before any sampling
        self.background_rows = (~edited).nonzero().flatten()
        self.n_edited = int(self.edited_rows.numel())
        #: the image stream's tokens each block computes: the edited ones, and the references' unless cached
        self.n_computed = self.n_edited + (0 if cache_reference else references)

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> EditState:
        return EditState()

    def constants(self, text: int, tokens: int, device: torch.device, dtype: torch.dtype, state: EditState) -> None:
        """The run's constants for a call of ``tokens`` image tokens after ``text`` text tokens, made at its
        first call of that many text tokens (Flux pads its text to one length; Qwen-Image's conditional and
        unconditional calls differ)."""
        made = state.by_text.get(text)
        if made is None:
            if self.edited.numel() != tokens:
                raise PolicyInputError(f"the mask covers {self.edited.numel()} image tokens, the latent being "
                                       f"sampled {tokens}; sample the inverted image's latent.")
            edited, n = self.edited.to(device), self.edited.numel()
            own_refs = torch.full((self.references,), not self.cache_reference, dtype=torch.bool, device=device)
            keep = torch.cat((torch.ones(text, dtype=torch.bool, device=device), edited, own_refs))[None, None, :, None]
            image_rows = self.edited_rows.to(device)
            if not self.cache_reference and self.references:
                image_rows = torch.cat((image_rows, torch.arange(n, n + self.references, device=device)))
            rows = torch.cat((torch.arange(text, device=device), image_rows + text))
            bias = background_bias(text, edited, self.scale, dtype, self.references) if self.scale else None
            made = state.by_text[text] = (keep, image_rows, rows, bias)
        state.keep, state.image_rows, state.rows, state.bias = made
        state.text = text

    def attention(self, q, k, v, where: JointWhere, state: EditState):
        text = where.text
        if state.text != text:
            self.constants(text, where.grid[0] * where.grid[1], k.device, q.dtype, state)
        if state.kept is None:
            state.kept = AheadOfUse(self.cache)
        kept = state.kept.get((state.step, *where.block), k)   # from the CPU where they were offloaded
        if kept is None:
            raise PolicyInputError(f"the inversion kept no keys and values for step {state.step} of block "
                                   f"{where.block[0]} {where.block[1]}; sample with the SIGMAS of KV-Edit.")
        ks, vs = kept
        if ks.shape[0] != k.shape[0]:   # the conditional and unconditional rows in one call (a prompt pair as long)
            ks, vs = ks.expand(k.shape[0], -1, -1, -1), vs.expand(k.shape[0], -1, -1, -1)
        whole = self.edited.numel() + self.references
        # the inversion kept the reference's keys and values where asked (Flow Invert's keep_reference)
        kept_whole = whole if self.kept_reference else self.edited.numel()
        if k.shape[2] == text + self.n_computed < text + whole:   # the block runs on the subset
            columns, bias = self._subset(ks.shape[2] - kept_whole, text, q, state)
            return where.attend(q, torch.cat((k, ks.index_select(2, columns)), 2),
                                torch.cat((v, vs.index_select(2, columns)), 2), mask=bias)
        if self.references and not self.kept_reference:   # not kept (and computed): its own keys stand in
            ks, vs = torch.cat((ks, k[:, :, -self.references:]), 2), torch.cat((vs, v[:, :, -self.references:]), 2)
        if ks.shape[2] == k.shape[2]:   # the kept text is as long as this one's: one select per tensor
            k, v = torch.where(state.keep, k, ks), torch.where(state.keep, v, vs)
        else:   # a longer or shorter target prompt
            image, keep = ks.shape[2] - k.shape[2] + text, state.keep[:, :, text:]
            k = torch.cat((k[:, :, :text], torch.where(keep, k[:, :, text:], ks[:, :, image:])), 2)
            v = torch.cat((v[:, :, :text], torch.where(keep, v[:, :, text:], vs[:, :, image:])), 2)
        made = where.attend(q.index_select(2, state.rows), k, v, mask=state.bias)
        return made.new_zeros(made.shape[0], q.shape[2], made.shape[2]).index_copy_(1, state.rows, made)

    def _subset(self, kept_text: int, text: int, q: torch.Tensor, state: EditState) -> tuple:
        """A call on the subset attends to its own keys (text, edited and computed reference tokens) and the kept
        ones it does not compute: the background's, and the reference's where cached (``columns`` of the kept
        tensors, after the kept text). Its ``bias``: 0 on its own, ``scale`` on the kept background, 0 on the kept
        reference; None where ``scale`` is 0 (no mask: the host's fused attention). Made once per run and text."""
        made = state.subset.get((kept_text, text))
        if made is None:
            device, n = q.device, self.edited.numel()
            background = self.background_rows.to(device) + kept_text
            refs = torch.arange(kept_text + n, kept_text + n + self.references, device=device)
            columns = torch.cat((background, refs)) if self.cache_reference else background
            bias = None
            if self.scale:
                bias = torch.cat((torch.zeros(text + self.n_computed, device=device),
                                  torch.full((background.numel(),), float(self.scale), device=device),
                                  torch.zeros(columns.numel() - background.numel(), device=device)))
                bias = bias.to(q.dtype)[None, None, None]
            made = state.subset[(kept_text, text)] = (columns, bias)
        return made
