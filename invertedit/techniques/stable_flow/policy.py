"""Stable Flow (Avrahami et al. 2025, "Stable Flow: Vital Layers for Training-Free Image Editing",
``snap-research/stable-flow``): the source and the edit run as one batch, and in the few "vital"
blocks of the transformer the edit's image tokens attend with the source's image keys and values
(the text's stay each row's own), so the edit keeps the source's identity and layout and changes
what the prompt asks for. For a real image the source row follows the image's inversion (a
nudged latent, inverted with the velocity taken at each step's far end).

As the authors' code does it (their ``FluxAttnProcessor2_0`` / ``FluxSingleAttnProcessor2_0`` with
``mm_copy_blocks`` / ``single_copy_blocks``, ``run_stable_flow.py``, their ``FluxPipeline``):
- the vital blocks for Flux.1 dev: double blocks 0, 1, 17, 18 and single blocks 9, 34, 35, 37, 6
  (their global layer numbers 28, 53, 54, 56, 25 less the 19 double blocks);
- in those blocks every row after the source takes the source's image keys and values, before the
  key norm and the rotary embedding (the same per token: taking them after, as the host hands them
  over, is the same);
- inversion: the image's latent times 1.15 ("latent nudging"), 50 Euler steps at guidance 1, the
  velocity of each step taken at its far end (their ``step_forward`` on the reversed timesteps);
- edit: 50 steps, guidance 1 for the source row and 3 for the edit; after each step the source
  row is set to an inverted latent: after step ``i`` their ``inverted_latent_list[-i]`` (for ``i =
  0`` the first inverted latent, ``-0`` being ``0``), which ``source_state`` gives.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.policy import AttentionPolicy, JointWhere, source_index
from . import ROW

# the authors' vital blocks of Flux.1 dev, as the host names the blocks
FLUX_VITAL_DOUBLE = (0, 1, 17, 18)
FLUX_VITAL_SINGLE = (9, 34, 35, 37, 6)
NUDGE = ROW.settings["InvertEditStableFlowInvert.nudge"]


def source_state(step: int, steps: int, aligned: bool = False) -> int:
    """The inverted latent (index in sampling order: 0 the noise end, ``steps`` the image) the source
    row holds when step ``step`` of ``steps`` is evaluated, as their loop sets it: the start, then
    after step ``i`` their ``inverted_latent_list[-i]`` (their list holds the inversion's states from
    the image end up, so its ``[-i]`` is the state at sampling point ``i - 1``; ``[-0]`` is ``[0]``,
    the state one step above the image). ``aligned`` (an option, not the code's): the state at the
    step's own point, the inversion read back step for step."""
    if aligned or step == 0:
        return step
    i = step - 1   # the step after which the row was set
    return steps - 1 if i == 0 else i - 1


@dataclass
class SharingState:
    """A run of ``ShareSourceKeysValues``: for each layout of a call's rows and tokens (chunks, rows,
    text tokens, tokens, device), the source rows' gather index and the image tokens' mask."""
    layouts: dict = field(default_factory=dict)


class ShareSourceKeysValues(AttentionPolicy[SharingState]):
    """In every chunk, every row after the source attends with the source's image keys and values
    (the text's are its own). One gather and one select per tensor; the image-token mask and the
    gather's index are made once per run."""

    pair = True

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> SharingState:
        return SharingState()

    def attention(self, q, k, v, where: JointWhere, state: SharingState):
        key = (where.chunks, where.rows, where.text, k.shape[2], k.device)
        made = state.layouts.get(key)
        if made is None:
            image = torch.ones(k.shape[2], dtype=torch.bool, device=k.device)
            image[:where.text] = False
            made = state.layouts[key] = (source_index(where.chunks, where.rows, k.device, kinds=(0, 1)),
                                         image[None, None, :, None])
        index, image = made
        k = torch.where(image, k.index_select(0, index), k)
        v = torch.where(image, v.index_select(0, index), v)
        return where.attend(q, k, v)
