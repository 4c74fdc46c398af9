"""ConsistEdit's attention control (Yin et al. 2025, "ConsistEdit: Highly Consistent and Precise Training-free
Visual Editing", Sec. 4; ``zxYin/ConsistEdit_Code``'s ``consistEdit/attention_control.py``), as two policies on
a diffusion transformer's joint attention (``hostkit/dit_attention.py``).

``EditMaps`` makes the mask. While the source is run along its inversion, each controlled block's image tokens'
attention probabilities on the edited object's words (the softmax over every key, averaged over heads, summed
over the words' tokens) are averaged over the calls and blocks, as the authors' ``AttentionMapController``
accumulates ``cross_attn_sum`` (``get_value_to_text_mask``; Flux: ``get_flux_value_to_text_mask_by_mean``); the
mean map is min-max normalised over the image and its cells above the threshold (their 0.1) are the edit region
(``edit_region``).

``ConsistencyControl`` edits the pair's joint attention (row 0 the source, row 1 the edit, in every chunk, the
conditional and the unconditional alike as their 4-row batch): the edit's vision tokens take the source's

- queries and keys everywhere in the first ``qk_steps`` steps (``TEST_QK_STEP = int(steps * alpha)``, alpha the
  consistency strength: structure), and outside the edit region in the later ones;
- values outside the edit region at every step (the values carry colour and texture: the edit region keeps its
  own, the rest the source's);

the text tokens keep the edit's own queries, keys and values (their "vision-only" control). This is their
``regiter_attention_editor_diffusers_sd3_mask(_real)`` / ``..._flux_mask`` with the mask read back: the control
happens before the attention, and the attention is then each row's own (``mask_tensor`` and ``value_mask_tensor``
as they build them; binary, so a select is their ``s * m + t * (1 - m)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.maps import joint_text_probs
from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError, source_index

#: The authors' threshold on the normalised map: ``mask_tensor[mask_tensor > 0.1] = 1`` (edit region)
THRESHOLD = 0.1
#: ``(attn_map - attn_min) / (attn_max - attn_min + 1e-6)``
NORMALISE_EPS = 1e-6


class EditMaps(AttentionPolicy[None]):
    """While the source runs along its inversion (one row a call): plain attention, with each call's image-to-word
    map (``[image tokens]``: the probabilities on the words' text ``positions``, averaged over heads and summed over
    the positions) added up, and the calls counted, for ``mean``."""

    pair = False

    def __init__(self, positions: list[int]):
        self.positions = list(positions)
        self.total: torch.Tensor | None = None
        self.count = 0
        self._index: dict = {}

    def attention(self, q, k, v, where: JointWhere, state=None):
        index = self._index.get(q.device)
        if index is None:   # once per device: the words' positions in the text
            index = self._index[q.device] = torch.tensor(self.positions, dtype=torch.long, device=q.device)
        for row in range(q.shape[0]):
            probs = joint_text_probs(q[row], k[row], where.text)     # [heads, image, text], softmax over every key
            words = probs.mean(0).index_select(1, index).sum(1)       # [image]
            self.total = words if self.total is None else self.total + words
            self.count += 1
        return where.attend(q, k, v)

    def mean(self) -> torch.Tensor:
        """The mean map over the recorded calls, ``[image tokens]`` (float32)."""
        if self.total is None:
            raise ValueError("no attention maps were recorded")
        return self.total / self.count


def edit_region(mean_map: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """The edit region (bool, ``[image tokens]``) of a mean image-to-word map: min-max normalised over the image,
    above ``threshold`` (the authors' ``get_value_to_text_mask`` normalisation and their 0.1)."""
    low, high = mean_map.amin(), mean_map.amax()
    normalised = (mean_map - low) / (high - low + NORMALISE_EPS)
    return normalised > threshold


@dataclass
class ControlRun:
    """A run of ``ConsistencyControl``: the selects' masks made once per layout of the call (rows, chunks, tokens,
    device) and phase (queries and keys everywhere, or outside the edit region)."""
    masks: dict = field(default_factory=dict)


class ConsistencyControl(AttentionPolicy[ControlRun]):
    """The pair's joint attention with the edit's vision tokens taking the source's queries and keys (everywhere in
    the first ``qk_steps`` steps, outside the edit region after) and values (outside the edit region); ``keep``
    (bool, ``[image tokens]``) is True outside the edit region, where the source is kept."""

    def __init__(self, keep: torch.Tensor, qk_steps: int):
        self.keep, self.qk_steps = keep.bool().flatten(), int(qk_steps)

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> ControlRun:
        return ControlRun()

    def _masks(self, where: JointWhere, q: torch.Tensor, early: bool, state: ControlRun):
        key = (q.shape[0], where.chunks, q.shape[2], where.text, q.device, early)
        made = state.masks.get(key)
        if made is None:   # once per layout and phase: [batch, 1, tokens, 1], True on the edit rows' kept tokens
            device = q.device
            keep = self.keep.to(device)
            target = torch.arange(q.shape[0], device=device).remainder(2).bool()    # the odd rows: the edits
            text = torch.zeros(where.text, dtype=torch.bool, device=device)          # the text keeps its own
            values = target[:, None] & torch.cat((text, keep))[None, :]
            queries = target[:, None] & torch.cat((text, torch.ones_like(keep)))[None, :] if early else values
            made = state.masks[key] = (queries[:, None, :, None], values[:, None, :, None])
        return made

    def attention(self, q, k, v, where: JointWhere, state: ControlRun):
        if where.rows != 2:
            raise PolicyInputError(f"the model is sampled on {where.rows} rows a prompt; ConsistEdit samples the "
                                   f"source/edit pair: its CONDITIONING with the image's latent repeated twice "
                                   f"(Repeat Latent Batch, amount 2).")
        image = q.shape[2] - where.text
        if image != self.keep.numel():
            raise PolicyInputError(f"the mask covers {self.keep.numel()} image tokens and this run's image has "
                                   f"{image}: sample the inverted image's latent (the same size).")
        early = self.qk_steps > 0 and where.step < self.qk_steps   # the step: read once per call
        queries, values = self._masks(where, q, early, state)
        index = source_index(where.chunks, where.rows, q.device, kinds=(0, 1))   # every row's source row
        q_src, k_src, v_src = (t.index_select(0, index) for t in (q, k, v))
        q = torch.where(queries, q_src, q)
        k = torch.where(queries, k_src, k)
        v = torch.where(values, v_src, v)
        return where.attend(q, k, v)
