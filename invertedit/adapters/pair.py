"""The source/target pair of the pair editors (Attention Inject, MasaCtrl, Plug-and-Play): one
batch-2 CONDITIONING and LATENT (row 0 source, row 1 target), sampled in one run."""
from __future__ import annotations

import torch

from .errors import NodeInputError
from .layout import transformer_blocks


def encode_pair(clip, source: str, target: str) -> list:
    """One CONDITIONING of batch 2: row 0 the source prompt, row 1 the target."""
    conds = []
    for text in (source, target):
        conds.append(clip.encode_from_tokens_scheduled(clip.tokenize(text))[0])
    emb = torch.cat([conds[0][0], conds[1][0]])
    extra = {}
    if conds[0][1].get("pooled_output") is not None:
        extra["pooled_output"] = torch.cat([conds[0][1]["pooled_output"], conds[1][1]["pooled_output"]])
    return [[emb, extra]]


def prepare_pair_model(model, latent: dict, kinds: tuple[str, ...], node: str):
    """The shared set-up of the pair editors: a clone of the model to patch, the UNet's
    transformer blocks, and the LATENT pair. Refuses a batch that is not one image and a model
    that already replaces these attention layers (the patch would be dropped)."""
    samples = latent["samples"]
    if samples.shape[0] != 1:
        raise NodeInputError(node, f"input 'latent' has a batch of {samples.shape[0]}; connect one inverted image.")
    blocks = transformer_blocks(model)
    existing = model.model_options.get("transformer_options", {}).get("patches_replace", {})
    taken = [(kind, key) for kind in kinds for key in existing.get(kind, {}) if key[:2] in blocks or key in blocks]
    if taken:
        raise NodeInputError(node, f"the input MODEL already has attention replace patches ({taken[0][0]} of block "
                                   f"{taken[0][1]}), from another node; they would be dropped. Apply {node} to the "
                                   f"model before that node's patch, or without it.")
    return model.clone(), blocks, {"samples": samples.repeat(2, 1, 1, 1)}


# transformer_options keys: Direct Inversion's mark that the first row's prediction is replaced
# after CFG (its value: how many rows), and the mark of a model call that runs target rows only.
SOURCE_ON_TRAJECTORY = "invertedit_source_on_trajectory"
TARGET_ONLY = "invertedit_target_only"


def pair_rows(q: torch.Tensor, extra_options: dict, node: str) -> tuple[list, int]:
    """The chunks (``cond_or_uncond``) of an attention call and their row count, which must be
    the (source, target) pair, or 1 in a call of target rows only (``TARGET_ONLY``)."""
    chunks = extra_options.get("cond_or_uncond", [0])
    rows = q.shape[0] // len(chunks)
    if extra_options.get(TARGET_ONLY) and rows == 1:
        return chunks, rows
    if rows != 2:
        raise NodeInputError(node, f"the sampler runs a batch of {rows}; sample the LATENT pair and the CONDITIONING "
                                   f"pair from this node (row 0 source, row 1 target).")
    return chunks, rows


def source_index(chunks: list, rows: int, device: torch.device, kinds: tuple = (0,),
                 extra: tuple[int, ...] = ()) -> torch.Tensor:
    """The row index that gives every target row of the chunks of ``kinds`` its source row (the
    other rows themselves), followed by the rows ``extra``: a constant of the call's layout, made
    on ``device`` once (a memo: the layout and device decide it), so a patch takes rows with one
    ``index_select`` and no transfer per call."""
    key = (tuple(chunks), rows, device, kinds, extra)
    index = _INDEX.get(key)
    if index is None:
        rows_of = [r for c, kind in enumerate(chunks) for r in
                   ((c * rows, c * rows) if kind in kinds else (c * rows, c * rows + 1))[:rows]]
        index = _INDEX[key] = torch.tensor(rows_of + list(extra), dtype=torch.long, device=device)
    return index


_INDEX: dict = {}


def rows_from_source(chunks: list, rows: int, *tensors: torch.Tensor, kinds: tuple = (0,)) -> tuple:
    """Copies of an attention call's ``tensors`` whose target rows are their source rows, in the
    chunks of ``kinds`` (conditional only for Prompt-to-Prompt, which edits only these; both for
    MasaCtrl): how an editor hands the target the source's maps (queries and keys) or its
    content (keys and values) in the one attention call of every row. One gather per tensor."""
    index = source_index(chunks, rows, tensors[0].device, kinds)
    return tuple(t.index_select(0, index) for t in tensors)
