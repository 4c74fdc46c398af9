"""FateZero's attention fusion as an attention policy (the math in ``attention/fatezero.py``, parity
with the authors' controller there): on a clip's source/target pair of 2F rows, the conditional
target frames take the fused maps of layers of at most 32 x 32 queries; the other rows attend as they
are (with the sparse-causal keys Cross-Frame Attention's patch hands every row).

The authors store the source's maps during the inversion and read the step's maps while editing the
target alone. Here the source frames are sampled beside the target (Direct Inversion keeps them on
the inversion's trajectory, so their maps at a step are the inversion's at that point): the cross-
and self-attention maps are the source rows' of the same call. The self-attention blend's mask needs
the step's source cross-attention of the 16 x 16 layers before the encoder's self-attention runs, so
while blending, a first call of the source's conditional frames alone records them (``SourceMaps``,
``glue.py``): F more rows a step, what the authors pay in their inversion."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.fatezero import edits_layer, fuse_cross_refine, fuse_cross_replace, fuse_self, fusion_mask
from ...attention.maps import attend, attention_probs, token_grid
from ...attention.policy import AttentionPolicy, PolicyInputError, Where

RECORD = "invertedit_fatezero_record"   # transformer_options: the source-only call that records the maps


@dataclass(frozen=True)
class FusionSchedule:
    cross: float        # fraction of the steps with the cross-attention replaced (cross_replace_steps)
    self_: float        # fraction of the steps with the self-attention fused (self_replace_steps)

    def replaces_cross(self, step: int, steps: int) -> bool:
        return step < int(self.cross * (steps + 1))   # the authors' word alphas: num_steps + 1 entries

    def fuses_self(self, step: int, steps: int) -> bool:
        return step < int(self.self_ * steps)         # num_self_replace = int(num_steps * self_replace_steps)


@dataclass
class FusionState:
    """The run's source maps of the step being sampled (the 16 x 16 cross-attention layers) and the masks
    made of them, per grid."""
    step: int = -1
    maps: list = field(default_factory=list)
    masks: dict = field(default_factory=dict)
    on_device: dict = field(default_factory=dict)   # the policy's constants on the run's device, made once a run

    def begin(self, step: int) -> None:
        self.step, self.maps, self.masks = step, [], {}


class FateZeroFusion(AttentionPolicy[FusionState]):
    """``mapper`` (``[M, M]`` replace, or ``[M]`` refine with ``alphas``), ``words`` (``[M]``: 1 on the
    blend words' source tokens, None: no blend, the source's self-attention), ``threshold``."""

    pair = False   # takes the source-only recording call too (F rows), and checks its layout itself

    def __init__(self, schedule: FusionSchedule, frames: int, mapper: torch.Tensor, alphas: torch.Tensor | None,
                 words: torch.Tensor | None, threshold: float):
        self.schedule, self.frames, self.mapper, self.alphas = schedule, frames, mapper, alphas
        self.words, self.threshold = words, threshold

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> FusionState:
        return FusionState()

    def blends(self, step: int, steps: int) -> bool:
        """Whether a step needs the source's maps first (the self-attention blend's mask)."""
        return self.words is not None and self.schedule.fuses_self(step, steps)

    def constants(self, state: FusionState, device: torch.device) -> dict:
        """The mapper, the refine alphas, the blend words and the word alphas (all 1: every word follows
        ``cross_replace``) on ``device``: moved once per run, not at every attention call."""
        made = state.on_device.get(device)
        if made is None:
            made = state.on_device[device] = {
                "mapper": self.mapper.to(device), "alphas": None if self.alphas is None else self.alphas.to(device),
                "words": None if self.words is None else self.words.to(device),
                "alpha": torch.ones(self.mapper.shape[-1], device=device)}
        return made

    @staticmethod
    def mask_maps(state: FusionState) -> list[torch.Tensor]:
        """The cross-attention maps the mask reads: those of the smallest grid outside the middle block, the
        authors' down_cross[2:4] + up_cross[:3] (SD1.5 at 512 px: the 16 x 16 layers)."""
        smallest = min(m.shape[2] for m in state.maps)
        return [m for m in state.maps if m.shape[2] == smallest]

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where,
                  state: FusionState) -> torch.Tensor:
        frames = self.frames
        if where.rows == frames:   # the source's conditional frames alone: record the mask's maps
            if where.cross and self.words is not None and where.block[0] != "middle":
                state.maps.append(attention_probs(q, k, where.heads, dtype=torch.float32))
            return where.attend(q, k, v)
        if where.rows != 2 * frames:
            raise PolicyInputError(f"the sampler runs {where.rows} rows a chunk, not the clip's {frames} frames' pair "
                                   f"({2 * frames}: source frames, then target frames); sample the LATENT pair and the "
                                   f"CONDITIONING pair from this node.")
        out = where.attend(q, k, v)
        tokens = q.shape[1]
        if not edits_layer(tokens) or 0 not in where.chunks:
            return out
        step, steps = where.step, where.steps
        if where.cross and not self.schedule.replaces_cross(step, steps):
            return out
        if not where.cross and not self.schedule.fuses_self(step, steps):
            return out
        const = self.constants(state, q.device)
        mask = None
        if not where.cross and self.words is not None:
            hw = token_grid(where.latent_hw, tokens)
            mask = state.masks.get(hw)
            if mask is None:
                if not state.maps:
                    raise PolicyInputError("the source's cross-attention maps of this step were not recorded; sample "
                                           "the MODEL this node outputs with a stock sampler.")
                mask = state.masks[hw] = fusion_mask(self.mask_maps(state), const["words"], hw,
                                                     self.threshold)
        out = out.clone()
        for c, kind in enumerate(where.chunks):
            if kind != 0:   # the authors edit the conditional half
                continue
            s = c * where.rows
            src, tgt = slice(s, s + frames), slice(s + frames, s + 2 * frames)
            p_s = attention_probs(q[src], k[src], where.heads, dtype=torch.float32)
            p_t = attention_probs(q[tgt], k[tgt], where.heads, dtype=torch.float32)
            if where.cross:
                if p_t.shape[-1] != self.mapper.shape[-1]:
                    raise PolicyInputError(f"the cross-attention context has {p_t.shape[-1]} tokens, not the prompts' "
                                           f"{self.mapper.shape[-1]}; sample the CONDITIONING pair from this node.")
                fused = (fuse_cross_replace(p_t, p_s, const["mapper"], const["alpha"]) if self.alphas is None else
                         fuse_cross_refine(p_t, p_s, const["mapper"], const["alphas"], const["alpha"]))
            else:
                fused = fuse_self(p_t, p_s, mask)
            out[tgt] = attend(fused, v[tgt]).to(out.dtype)
        return out
