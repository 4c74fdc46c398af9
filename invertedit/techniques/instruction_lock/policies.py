"""Region Lock's attention (after RegionE, Chen et al. 2025, "Adaptive Region-Aware Generation for Efficient Image
Editing", ``Peyton-Chen/RegionE``: its region-instruction KV cache): an instruction editor sampled as usual, every
token computed at the warm-up steps (and at refresh steps), where each block keeps the keys and values of the
tokens the edit leaves alone (the background's outside the region, and the reference images'); at the other steps
each block runs on the text and the region's tokens alone, which attend to their own keys and values and the kept
ones. The latent outside the region is the glue's (``glue.py``: on the straight path from the run's noise to the
image), so the outside's keys and values change little from step to step: RegionE's observation that the
unedited region's trajectory is straight.

Plain torch and ``attention/policy.py``: the host kit's driver hands the calls in (``JointWhere``), its
``SubsetBlock`` runs the blocks on the rows ``RegionCache.rows`` chooses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError


@dataclass
class RegionState:
    """A Region Lock run: the step's kind (set once per model call by the glue), what the blocks kept at the last full
    step, the run's constants, and the glue's latents."""
    full: bool = True                    # this model call computes every token (a warm-up or refresh step)
    signature: tuple = ()                # the model call's (text tokens, chunks, rows): what its kept tensors fit
    kept: dict = field(default_factory=dict)     # (signature, block) -> (keys, values) of the tokens left alone
    by_layout: dict = field(default_factory=dict)   # (text, references, device) -> (rows, image_rows, columns)
    pe: tuple | None = None              # the host kit's SubsetBlock keeps the rotary embedding's rows here
    image: torch.Tensor | None = None    # the glue's: the image's latent (model space) on the run's device
    noise: torch.Tensor | None = None    # ... the run's starting noise, read at its first call
    cells: torch.Tensor | None = None    # ... the region's latent cells


class RegionCache(AttentionPolicy[RegionState]):
    """``edited``: the image tokens of the region (bool, in rows). At a full step every call attends as the host's
    and keeps the keys and values of the background's and the reference's tokens; at a cached step a call on the
    text and the region's tokens attends to its own and the kept ones (a call on every token, where a block holds
    another node's patch, takes the kept ones in their places)."""

    pair = False
    reads_references = True

    def __init__(self, edited: torch.Tensor):
        self.edited = edited
        self.n_edited = int(edited.sum())   # made with the node, before any sampling
        self.edited_rows, self.background_rows = edited.nonzero().flatten(), (~edited).nonzero().flatten()

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> RegionState:
        return RegionState()

    def rows(self, text: int, references: int, device: torch.device, state: RegionState) -> tuple:
        """``(rows, image_rows, columns)`` of a call of ``text`` text tokens and ``references`` reference tokens: the
        rows a cached step computes (the text's, the region's) in the sequence and in the image stream, and the
        sequence's columns it keeps (the background's, the reference's). Made once per run and layout."""
        key = (text, references, device)
        made = state.by_layout.get(key)
        if made is None:
            n = self.edited.numel()
            image_rows = self.edited_rows.to(device)
            rows = torch.cat((torch.arange(text, device=device), image_rows + text))
            columns = torch.cat((self.background_rows.to(device) + text,
                                 torch.arange(text + n, text + n + references, device=device)))
            made = state.by_layout[key] = (rows, image_rows, columns)
        return made

    def attention(self, q, k, v, where: JointWhere, state: RegionState):
        text, tokens = where.text, where.grid[0] * where.grid[1]
        if self.edited.numel() != tokens:
            raise PolicyInputError(f"the region covers {self.edited.numel()} image tokens and the latent being sampled "
                                   f"{tokens}; give the mask of the image being edited, and its latent.")
        rows, _, columns = self.rows(text, where.references, k.device, state)
        key = (state.signature, where.block)
        if state.full:
            state.kept[key] = (k.index_select(2, columns), v.index_select(2, columns))
            return where.attend(q, k, v)
        kept = state.kept.get(key)
        if kept is None:
            raise PolicyInputError(f"block {where.block[0]} {where.block[1]} has no keys and values of a full step for "
                                   f"this call; give warmup_steps of at least 1.")
        ks, vs = kept
        if k.shape[2] == text + self.n_edited:   # the block runs on the text and the region
            return where.attend(q, torch.cat((k, ks), 2), torch.cat((v, vs), 2))
        return where.attend(q, k.index_copy(2, columns, ks), v.index_copy(2, columns, vs))
