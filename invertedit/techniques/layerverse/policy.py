"""LayerVerse's KV-injection (Zhirnov et al. 2026, ``v-gen-ai/LayerVerse``) as two attention policies: while the
image is inverted, the chosen blocks' image keys and values are kept (``KeepKeysValues``); while the edit samples
back, those blocks attend with them (``InjectKeysValues``): a *global* block with the source's image keys and values
in place of its own, a *masked* block with the source's outside the editing mask and its own inside it. The text
tokens' keys and values are always the edit's own (the authors replace ``img_k`` / ``img_v`` only), and every
other block is untouched.

Which kept tensor serves which call, as each of the authors' codes keys them:
- ``"flux"`` (``LayerVerse_FLUX/src/flux/modules/layers.py``, the RF-Solver-Edit keying: ``info['t']`` is the step's
  far end while inverting, its start while sampling): the inversion's call at the low end of a step's interval
  serves the edit's call at its high end, half steps meet half steps (``attention.policy.shared_key``);
- ``"sd3"`` (``LayerVerse_SD3.5/src/mmditx.py``, keyed by the sigma, ``f"{sigma:.4f}"``): the inversion's call at a
  sigma serves the edit's call at the same sigma.
A call with nothing kept for it (FireFlow's first evaluation at the top of the schedule, which their inversion never
makes) attends as it is, as theirs falls back to its own keys and values.

SD3.5's blocks with a second, image-only attention (``x_block_self_attn``, blocks 0 to 12 of SD3.5 medium): the
authors inject that attention too, in the block's role, under its own key (``key_suffix="_self"``); the driver hands
such a call with ``where.text == 0``. Pure: torch only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError, same_schedule, schedule_position, \
    shared_key

Key = tuple[int, bool, str, int, bool]   # (sampling step, half step, block kind, block index, image-only attention)
KEYINGS = ("flux", "sd3")


def call_key(where: JointWhere, keying: str, inverting: bool) -> tuple[int, bool]:
    """(sampling step, half step) a call keeps or reads under, by the authors' ``keying``."""
    if keying == "flux":
        return shared_key(where, inverting)
    return schedule_position(where.schedule, where.sigma)


def key_name(key: Key) -> str:
    """The name of a kept tensor pair's keys among an INVERSION's clues (``.k``; the values' ``.v``)."""
    step, half, kind, index, image_only = key
    return f"layerverse.{step}.{int(half)}.{kind}.{index}.{int(image_only)}"


def name_key(name: str) -> tuple[Key, str] | None:
    """The key and ``"k"`` / ``"v"`` of a clue's name (``key_name`` + ``.k``), or None for another clue."""
    parts = name.split(".")
    if len(parts) != 7 or parts[0] != "layerverse" or parts[6] not in ("k", "v"):
        return None
    return (int(parts[1]), bool(int(parts[2])), parts[3], int(parts[4]), bool(int(parts[5]))), parts[6]


class KeepKeysValues(AttentionPolicy[None]):
    """While inverting: every call of the blocks it is installed on puts its image tokens' keys and values into
    ``sink`` (through ``keep``, which moves them where they wait), then attends as it was."""

    pair = False
    reads_image_attention = True   # SD3.5's image-only second attention, which the authors keep too

    def __init__(self, sink: dict, keep: Callable[[torch.Tensor], torch.Tensor], keying: str):
        self.sink, self.keep, self.keying = sink, keep, keying

    def attention(self, q, k, v, where: JointWhere, state=None):
        step, half = call_key(where, self.keying, inverting=True)
        text = where.text
        self.sink[(step, half, *where.block, text == 0)] = (self.keep(k[:, :, text:]), self.keep(v[:, :, text:]))
        return where.attend(q, k, v)


@dataclass
class InjectionRun:
    """A run of ``InjectKeysValues``: whether its schedule was checked, the current model call's sigma and key
    (found once per call), and the editing mask per image layout (grid, device): ``[1, 1, tokens, 1]``, True where
    the edit keeps its own keys and values."""
    checked: bool = False
    sigma: float | None = None
    key: tuple[int, bool] | None = None
    masks: dict = field(default_factory=dict)


class InjectKeysValues(AttentionPolicy[InjectionRun]):
    """While editing: in the calls of the first ``steps`` sampling steps that have kept keys and values, a block of
    ``global_blocks`` attends with the source's image keys and values, any other (a masked block) with the source's
    outside ``edited`` and its own inside; the text's are the call's own. ``edited``: the image's patch grid
    ``[rows, cols]``, True in the editing region; None (no mask: the authors' ``use_mask`` off): the masked blocks
    take the source's everywhere. Every row of the batch takes the one kept source (SD3's unconditional row too)."""

    pair = False
    reads_image_attention = True

    def __init__(self, kept: dict[Key, tuple[torch.Tensor, torch.Tensor]], schedule: list[float], keying: str,
                 global_blocks, edited: torch.Tensor | None, steps: int):
        self.kept, self.schedule, self.keying, self.steps = kept, schedule, keying, steps
        self.global_blocks = frozenset(global_blocks)
        self.edited = edited

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> InjectionRun:
        return InjectionRun()

    def _mask(self, where: JointWhere, device, state: InjectionRun) -> torch.Tensor:
        key = (where.grid, device)
        mask = state.masks.get(key)
        if mask is None:   # once per layout and device a run
            if tuple(self.edited.shape) != tuple(where.grid):
                raise PolicyInputError(
                    f"the editing mask is {self.edited.shape[1]}x{self.edited.shape[0]} patches and the image being "
                    f"sampled {where.grid[1]}x{where.grid[0]}; give the mask of the inverted image (the same size).")
            mask = state.masks[key] = self.edited.to(device).reshape(1, 1, -1, 1)
        return mask

    def attention(self, q, k, v, where: JointWhere, state: InjectionRun):
        if not state.checked:
            if not same_schedule(where.schedule, self.schedule):
                raise PolicyInputError(
                    f"the model is sampled on {len(where.schedule) - 1} steps that are not the inversion's schedule "
                    f"({len(self.schedule) - 1} steps); sample with the SIGMAS of the inversion's Flow Invert.")
            state.checked = True
        if state.sigma != where.sigma:
            state.sigma, state.key = where.sigma, call_key(where, self.keying, inverting=False)
        if state.key[0] >= self.steps:
            return where.attend(q, k, v)
        text = where.text
        kept = self.kept.get((*state.key, *where.block, text == 0))
        if kept is None:
            return where.attend(q, k, v)
        source_k, source_v = kept
        if source_k.shape[2] != k.shape[2] - text or source_k.shape[-1] != k.shape[-1]:
            raise PolicyInputError(
                f"the kept keys and values are {source_k.shape[2]} image tokens, this call's {k.shape[2] - text}: "
                f"sample the inverted image's latent (the same size) with the model it was inverted with.")
        source_k, source_v = source_k.to(k), source_v.to(v)
        if where.block in self.global_blocks or self.edited is None:
            image_k = source_k.expand(k.shape[0], -1, -1, -1)
            image_v = source_v.expand(v.shape[0], -1, -1, -1)
        else:
            mask = self._mask(where, k.device, state)
            image_k = torch.where(mask, k[:, :, text:], source_k)
            image_v = torch.where(mask, v[:, :, text:], source_v)
        if text:
            image_k = torch.cat((k[:, :, :text], image_k), dim=2)
            image_v = torch.cat((v[:, :, :text], image_v), dim=2)
        return where.attend(q, image_k, image_v)
