"""RF-Solver-Edit's feature sharing (Wang et al. 2024, "Taming Rectified Flow for Inversion and
Editing", ``wangjiangshan0725/RF-Solver-Edit``): while an image is inverted, the attention values
of Flux's last single-stream blocks are kept for the first sampling steps; while the edit samples
back, those blocks attend with the kept values in place of their own, so the layout and the
details of the source carry into the edit.

As the authors' code keys them (``info['t']``, ``info['second_order']``, ``info['id']``): a value
belongs to a step of the sampling schedule (the inversion walks it backwards), to its first or
its half-step evaluation, and to a block. The inversion's evaluation at the low end of a step's
interval gives the value the edit uses at the interval's high end; half steps meet half steps.
Which steps: the first ``steps`` of sampling (their ``inject_step``); which blocks: the single
blocks from ``first_block`` on (their ``info['id'] > 19``: 20 to 37 of Flux's 38). Both policies
act on the whole call, text tokens included, as theirs does.

On Qwen-Image (no authors' code; its 60 blocks are all joint, text then image tokens in one attention)
the same policies run on the joint blocks from ``first_block`` on with ``image_only``: the image tokens'
values are kept and shared, and the text tokens keep the edit prompt's own. Flux's T5 text is padded to
512 tokens, so a source's text values fit any target's; Qwen2.5-VL's text is not padded, so the source's
and the target's text differ in length and only the image's values line up token for token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError, same_schedule, shared_key

Key = tuple[int, bool, int]   # (sampling step, half step, single block)


def key_name(key: Key) -> str:
    """The name of a kept value among an INVERSION's clues."""
    step, half, block = key
    return f"share.v.{step}.{int(half)}.{block}"


def name_key(name: str) -> Key | None:
    """The key of a clue's name (``key_name``), or None for another clue."""
    parts = name.split(".")
    if len(parts) != 5 or parts[:2] != ["share", "v"]:
        return None
    return int(parts[2]), bool(int(parts[3])), int(parts[4])


class KeepValues(AttentionPolicy[None]):
    """While inverting: each call of the first ``steps`` sampling steps puts its values into
    ``sink`` (through ``keep``, which moves them where they are kept), then attends as it was;
    ``image_only``: the image tokens' values alone (Qwen-Image's joint blocks)."""

    pair = False

    def __init__(self, steps: int, sink: dict, keep: Callable[[torch.Tensor], torch.Tensor], image_only: bool = False):
        self.steps, self.sink, self.keep, self.image_only = steps, sink, keep, image_only

    def attention(self, q, k, v, where: JointWhere, state=None):
        step, half = shared_key(where, inverting=True)
        if step < self.steps:
            self.sink[(step, half, where.block[1])] = self.keep(v[:, :, where.text:] if self.image_only else v)
        return where.attend(q, k, v)


@dataclass
class SharingRun:
    """A run of ``ShareValues``: whether its schedule was checked, and the sigma of the current model
    call with its key (found once per model call)."""
    checked: bool = False
    sigma: float | None = None
    key: tuple[int, bool] | None = None


class ShareValues(AttentionPolicy[SharingRun]):
    """While editing: the calls of a kept step attend with the kept values (every row of the batch,
    as the authors' batch of one); the others as they were. The run's schedule must be the
    inversion's (``schedule``), checked once per run. ``image_only``: the kept values are the image
    tokens' (``KeepValues``'s), and the text tokens attend with the run's own (Qwen-Image)."""

    pair = False

    def __init__(self, values: dict[Key, torch.Tensor], schedule: list[float], image_only: bool = False):
        self.values, self.schedule, self.image_only = values, schedule, image_only

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> SharingRun:
        return SharingRun()

    def attention(self, q, k, v, where: JointWhere, state: SharingRun):
        if not state.checked:
            run = where.schedule
            if not same_schedule(run, self.schedule):
                raise PolicyInputError(
                    f"the model is sampled on {len(run) - 1} steps that are not the inversion's schedule "
                    f"({len(self.schedule) - 1} steps); sample with the SIGMAS of the inversion's Flow Invert.")
            state.checked = True
        if state.sigma != where.sigma:
            state.sigma, state.key = where.sigma, shared_key(where, inverting=False)
        kept = self.values.get((*state.key, where.block[1]))
        if kept is None:
            return where.attend(q, k, v)
        if self.image_only:
            if kept.shape[1:] != v.shape[1:2] + (v.shape[2] - where.text,) + v.shape[3:]:
                raise PolicyInputError(
                    f"the kept values are {kept.shape[2]} image tokens, this run's {v.shape[2] - where.text}: sample "
                    f"the inverted image's latent (the same size).")
            shared = kept.to(v).expand(v.shape[0], -1, -1, -1)
            return where.attend(q, k, torch.cat((v[:, :, :where.text], shared), dim=2))
        if kept.shape[1:] != v.shape[1:]:
            raise PolicyInputError(
                f"the kept values are {kept.shape[2]} tokens ({where.text} text + image), this run's "
                f"{v.shape[2]}: sample the inverted image's latent, with prompts encoded the same way as the "
                f"source's (the same text encoders).")
        return where.attend(q, k, kept.to(v).expand_as(v))
