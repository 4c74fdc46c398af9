"""A clip on the SD family: an IMAGE batch of F >= 2 frames, a LATENT ``[F, C, h, w]``, inverted in
one batched run. A source/target pair of clips is sampled as one LATENT of 2F rows in BLOCKS (rows
0..F-1 the source frames, F..2F-1 the target frames) with a CONDITIONING of 2F rows made by the pair
node itself, ``[source] * F + [target] * F`` (the host's own repeat of a batch-2 pair would
interleave them). In an attention call every chunk (``cond_or_uncond``) then holds F rows (one
clip) or 2F (a pair): row ``r`` is frame ``r % F`` of branch ``r // F``. A single image is F = 1,
the (source, target) pair of rows every pair editor has always sampled.

Cross-frame attention (Wu et al., "Tune-A-Video", 2023; Qi et al., "FateZero", 2023; Khachatryan
et al., "Text2Video-Zero", 2023) is a host ``attn1_patch``: it hands every frame's self-attention
the hidden states of its anchor frames, of the same branch and chunk, as its keys and values, so
that any attn1 replace policy installed after it (Prompt-to-Prompt, Plug-and-Play, MasaCtrl) sees
the extended keys."""
from __future__ import annotations

import torch

from ..attention.cross_frame import anchor_rows
from .errors import NodeInputError

#: transformer_options key: the clip's frame count F of a pair editor's run (absent: F = 1)
FRAMES_KEY = "invertedit_frames"


def frames_of(transformer_options: dict) -> int:
    """The frame count F a pair editor set for its run (1 where none did: a single image)."""
    return int(transformer_options.get(FRAMES_KEY, 1))


def set_frames(model, frames: int) -> None:
    """Record the clip's frame count F on ``model`` (a clone the caller patches), for the pair's
    checks in every attention call. F = 1 records nothing: a single image is as it always was."""
    if frames > 1:
        model.model_options.setdefault("transformer_options", {})[FRAMES_KEY] = frames


def blocked_conditioning(pair: list, frames: int) -> list:
    """A batch-2 (source, target) CONDITIONING as the blocked one of 2F rows: ``[source] * F +
    [target] * F`` (F = 1: ``pair`` itself, unchanged)."""
    if frames == 1:
        return pair
    emb, extra = pair[0]
    extra = dict(extra)
    if extra.get("pooled_output") is not None:
        extra["pooled_output"] = extra["pooled_output"].repeat_interleave(frames, 0)
    return [[emb.repeat_interleave(frames, 0), extra]]


def clip_frames(node: str, name: str, samples: torch.Tensor, least: int = 2) -> int:
    """The frame count of a clip's LATENT ``samples`` (its batch), refused below ``least``."""
    if samples.ndim != 4:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}; connect a clip's LATENT [frames, "
                                   f"channels, height, width] (VAE Encode of the frames, or an inverter's LATENT).")
    frames = samples.shape[0]
    if frames < least:
        raise NodeInputError(node, f"input '{name}' is a clip of {frames} frame; connect {least} frames or more (an "
                                   f"IMAGE batch: Load Video -> Get Video Components, or an animated image in Load "
                                   f"Image, through VAE Encode).")
    return frames


class CrossFrameKeys:
    """attn1_patch: every row's self-attention keys and values become the hidden states of its
    anchor frames (``attention/cross_frame.py``), taken with one ``index_select`` by an index made
    once per layout and device. The rows of a chunk are F (a clip) or 2F (a source/target pair in
    blocks); any other count is refused."""

    def __init__(self, frames: int, anchors: tuple[tuple[int, ...], ...], node: str, min_channels: int = 0):
        self.frames, self.anchors, self.node, self.min_channels = frames, anchors, node, min_channels
        self.index: dict = {}

    def rows(self, chunks: int, batch: int) -> int:
        rows = batch // chunks
        if batch % chunks or rows not in (self.frames, 2 * self.frames):
            raise NodeInputError(self.node, f"the sampler runs a batch of {batch} rows in {chunks} chunk(s), not the "
                                            f"clip's {self.frames} frames (or {2 * self.frames}: a source/target pair "
                                            f"of them); connect the same clip's LATENT to this node and the sampler "
                                            f"(input 'latent' sets the frame count).")
        return rows

    def __call__(self, n, context, value, extra_options):
        if context.shape[-1] < self.min_channels:   # FateZero's least_sc_channel: a narrow layer keeps its frame
            return n, context, value
        chunks = len(extra_options.get("cond_or_uncond", [0]))
        batch = context.shape[0]
        rows = self.rows(chunks, batch)
        key = (chunks, rows, context.device)
        index = self.index.get(key)
        if index is None:
            index = self.index[key] = torch.tensor(anchor_rows(self.anchors, self.frames, chunks, rows),
                                                   dtype=torch.long, device=context.device)
        count = len(self.anchors[0])

        def gather(t: torch.Tensor) -> torch.Tensor:
            return t.index_select(0, index).view(batch, count * t.shape[1], t.shape[2])

        keys = gather(context)
        return n, keys, keys if value is context else gather(value)


def cross_frame_model(model, frames: int, anchors: tuple[tuple[int, ...], ...], node: str, min_channels: int = 0):
    """A clone of ``model`` whose every self-attention layer (attn1 of every transformer block)
    reads the anchor frames' keys and values (``CrossFrameKeys``, an ``attn1_patch``: it composes
    with the pair editors' attn1 replace policies, installed before or after it)."""
    m = model.clone()
    m.set_model_attn1_patch(CrossFrameKeys(frames, anchors, node, min_channels))
    return m
