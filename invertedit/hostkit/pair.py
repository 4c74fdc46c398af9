"""The source/target pair of the pair editors (Attention Inject, MasaCtrl, Plug-and-Play): one
batch-2 CONDITIONING and LATENT (row 0 source, row 1 target), sampled in one run; for a clip of F
frames, 2F rows in blocks (rows 0..F-1 the source frames, F..2F-1 the target's; ``frames.py``)."""
from __future__ import annotations

import logging
import math
from functools import partial
from typing import Callable

import comfy.patcher_extension
import torch

from ..attention.local_blend import LocalBlend, blend_start
from ..attention.prompt_to_prompt import ReplaceSchedule, idle_reason, run_note
from .errors import NodeInputError
from .fingerprint import conditioning_fingerprint
from .frames import FRAMES_KEY, blocked_conditioning, set_frames
from .inversion_patches import sampler_name, steps_as_euler
from .inverters import check_latent_made_with
from .keys import INVERSION_KEY, TARGET_ONLY
from .layout import transformer_blocks
from .sampling import check_latent_size


def encode_prompt(clip, text: str) -> list:
    """A prompt's CONDITIONING as CLIP Text Encode makes it (one row; 77 tokens per CLIP window)."""
    return [clip.encode_from_tokens_scheduled(clip.tokenize(text))[0]]


def join_pair(source: list, target: list, frames: int = 1) -> list:
    """One CONDITIONING of batch 2 from two one-row ones: row 0 the source, row 1 the target; for a
    clip of ``frames`` F > 1, of 2F rows in blocks (``frames.blocked_conditioning``).
    Embeddings of different token lengths (a prompt longer than one 77-token CLIP window takes
    several) are each repeated to the least common multiple of the lengths, as the host does
    when it batches such conds (``comfy.conds.CONDCrossAttn.concat``): attention over a
    repeated context is the same attention."""
    (emb_s, extra_s), (emb_t, extra_t) = source[0], target[0]
    length = math.lcm(emb_s.shape[1], emb_t.shape[1])
    emb = torch.cat([e.repeat(1, length // e.shape[1], 1) for e in (emb_s, emb_t)])
    extra = {}
    if extra_s.get("pooled_output") is not None:
        extra["pooled_output"] = torch.cat([extra_s["pooled_output"], extra_t["pooled_output"]])
    return blocked_conditioning([[emb, extra]], frames)


def encode_pair(clip, source: str, target: str) -> list:
    """The source/target CONDITIONING pair of two prompts (``join_pair``)."""
    return join_pair(encode_prompt(clip, source), encode_prompt(clip, target))


def warn_same_prompts(node: str, source: str, target: str) -> None:
    """Log that the target will reproduce the source when the prompts are the same (an edit
    that leaves the image as it is is allowed, but never silently)."""
    if source.strip() == target.strip():
        logging.warning("%s: the source and target prompts are the same, so the target will reproduce the source; "
                        "write the edit in the target prompt.", node)


class PairRun:
    """OUTER_SAMPLE wrapper of a pair editor, run once per sampling run: refuses a run in which the
    editor would never act (``idle(steps)`` says why, from the run's step count: the policy's
    schedule knows), or, with ``euler_only`` (why), a sampler that does not take the DDIM/Euler
    step; warns when the sampled model carries an inversion (Apply Inversion, before or after the
    editor) made with another source prompt: the source row would not reproduce the image; and logs
    ``note(steps)``, the step counts the run will use, where given."""

    def __init__(self, source: list, node: str, idle: Callable[[int], str | None] = lambda steps: None,
                 note: Callable[[int], str] | None = None, euler_only: str | None = None):
        self.source_fingerprint = conditioning_fingerprint(source)   # the source prompt's CONDITIONING, as inverters record it
        self.node, self.idle, self.note, self.euler_only = node, idle, note, euler_only

    def check(self, guider, steps: int, frames: int | None = None) -> None:
        """The run's checks, before its first step (``frames``: the pair's frame count F, where known)."""
        reason = self.idle(steps)
        if reason:
            raise NodeInputError(self.node, reason)
        guards = guider.model_patcher.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, INVERSION_KEY)
        inversions = [g.inversion for g in guards if getattr(g, "inversion", None) is not None]
        if frames is not None:
            for inv in inversions:
                if inv.trajectory.shape[1] not in (1, frames):
                    raise NodeInputError(self.node, f"the MODEL carries an inversion (Apply Inversion) of "
                                                    f"{inv.trajectory.shape[1]} frames, but the LATENT pair holds a clip "
                                                    f"of {frames}; apply the inversion of this clip (the one the LATENT "
                                                    f"was inverted with).")
        made = [inv.fingerprint.get("positive") for inv in inversions]
        if any(f is not None and f != self.source_fingerprint for f in made):
            logging.warning("%s: the source prompt is not the prompt the inversion (from Apply Inversion) was made "
                            "with, so the source branch does not retrace the image (its row, or with Direct Inversion "
                            "the attention the target takes from it); give the source prompt the inversion's prompt "
                            "(empty if it was inverted with an empty prompt), or invert with this one.", self.node)

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        """The run itself, after its checks (the guider is the executor's ``class_obj``)."""
        steps = len(sigmas) - 1
        self.check(executor.class_obj, steps, max(latent_image.shape[0] // 2, 1))
        if self.euler_only and not steps_as_euler(sampler):
            raise NodeInputError(self.node, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' "
                                            f"{self.euler_only}")
        if self.note is not None:
            logging.info(self.note(steps))
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)


#: Why a local blend takes the DDIM/Euler step (``PairRun``'s ``euler_only``)
BLEND_EULER_ONLY = ("steps differently from the DDIM/Euler step for which the local blend makes the blended latent, "
                    "so what lies outside the mask would drift from the image; use ddim or euler (Flow Sampler: "
                    "euler), or turn local_blend off (a global edit).")


def replace_run(schedule: ReplaceSchedule, blend: LocalBlend | None, source: list, reweight: bool, node: str) -> PairRun:
    """The run checks of a Prompt-to-Prompt pair (either attention layout): refused where its
    ``schedule`` never acts, or where a local ``blend`` meets a sampler without the DDIM/Euler step;
    the run's step counts logged."""
    return PairRun(source, node, idle=partial(idle_reason, schedule, reweight=reweight, blend=blend is not None,
                                              node=node),
                   note=lambda steps: run_note(schedule, steps, None if blend is None else blend_start(blend.start, steps),
                                               node),
                   euler_only=BLEND_EULER_ONLY if blend is not None else None)


def prepare_pair_model(model, latent: dict, kinds: tuple[str, ...], node: str):
    """The shared set-up of the pair editors: a clone of the model to patch, the UNet's
    transformer blocks, and the LATENT pair: one image's two rows, or a clip of F frames as 2F rows
    in blocks (its frame count recorded on the clone, ``frames.set_frames``). Refuses a LATENT
    inverted with another model, and a model that already replaces these attention layers (the
    patch would be dropped)."""
    samples = latent["samples"]
    if samples.ndim != 4 or samples.shape[0] < 1:
        raise NodeInputError(node, f"input 'latent' has shape {tuple(samples.shape)}; connect one inverted image or "
                                   f"a clip's inverted frames [frames, channels, height, width].")
    check_latent_made_with(node, latent, model)
    check_latent_size(node, "latent", samples, model)
    blocks = transformer_blocks(model)
    existing = model.model_options.get("transformer_options", {}).get("patches_replace", {})
    taken = [(kind, key) for kind in kinds for key in existing.get(kind, {}) if key[:2] in blocks or key in blocks]
    if taken:
        raise NodeInputError(node, f"the input MODEL already has attention replace patches ({taken[0][0]} of block "
                                   f"{taken[0][1]}), from another node; they would be dropped. Apply {node} to the "
                                   f"model before that node's patch, or without it.")
    m = model.clone()
    set_frames(m, samples.shape[0])
    return m, blocks, {"samples": samples.repeat(2, 1, 1, 1)}   # [source frames, target frames]: the blocks


def pair_rows(q: torch.Tensor, extra_options: dict, node: str) -> tuple[list, int]:
    """The chunks (``cond_or_uncond``) of an attention call and their row count, which must be
    the (source, target) pair, 2F for a clip of F frames (``frames.FRAMES_KEY``), or 1 in a call of
    target rows only (``TARGET_ONLY``)."""
    chunks = extra_options.get("cond_or_uncond", [0])
    rows = q.shape[0] // len(chunks)
    if extra_options.get(TARGET_ONLY) and rows == 1:
        return chunks, rows
    frames = extra_options.get(FRAMES_KEY, 1)
    if rows != 2 * frames:
        clip = f" of a clip of {frames} frames (rows 0 to {frames - 1} source, the rest target)" if frames > 1 else \
            " (row 0 source, row 1 target)"
        raise NodeInputError(node, f"the sampler runs a batch of {rows}; sample the LATENT pair and the CONDITIONING "
                                   f"pair from this node{clip}.")
    return chunks, rows
