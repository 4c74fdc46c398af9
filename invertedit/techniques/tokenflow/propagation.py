"""TokenFlow (Geyer, Bar-Tal, Bagon and Dekel, "TokenFlow: Consistent Diffusion Features for
Consistent Video Editing", ICLR 2024): the pure math, as the authors' code (omerbt/TokenFlow,
``run_tokenflow_pnp.py`` and ``tokenflow_utils.py``) computes it.

At every denoising step the clip's F frames are cut in batches of ``batch_size`` and one keyframe
is drawn at random in each (``keyframe_draws``). The keyframes are edited jointly: every
self-attention of the edited branches attends to the keys and values of all keyframes
(``keyframe_attention``: their "extended attention"), with Plug-and-Play's injection of the
source's queries and keys on the decoder's layers. Then every frame is denoised with its
self-attention outputs replaced by the keyframes' edited outputs, taken token by token through
the nearest-neighbour field of the *source's* features (``nearest_tokens``: cosine similarity of
the frame's normalised self-attention input against the keyframe's, the source branch's) and
blended between the frame's own batch's keyframe and the previous batch's by frame distance
(``propagate``, the shares of ``propagation_weights``). The blend is the code's, which differs
from the paper's equation 5: the distances are to the *middles* of the two batches (not to the
keyframes), and the weight is ``sigmoid(d2 / (d1 + d2))``, so it stays between 0.5 and 0.73.

torch only: no host. A frame's propagation depends on the keyframes' outputs only, so every frame
is propagated in one batched call (the authors loop over the batches, one UNet call each).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


def batches(frames: int, batch_size: int) -> int:
    """The number of frame batches (their code needs ``frames % batch_size == 0``; a shorter last
    batch is the pack's extension)."""
    return -(-frames // batch_size)


def keyframe_draws(seed: int, steps: int, frames: int, batch_size: int) -> torch.Tensor:
    """The keyframes of every step, ``[steps, batches]`` (frame indices, CPU): per step one frame
    drawn uniformly in each batch, as the authors' ``batched_denoise_step`` draws them
    (``torch.randint(batch_size, (F // batch_size,)) + torch.arange(0, F, batch_size)`` on a
    generator seeded with ``seed``, one draw per step in order). A shorter last batch (F not a
    multiple of ``batch_size``) takes one more draw, within its own length."""
    g = torch.Generator().manual_seed(int(seed))
    full, rest = divmod(frames, batch_size)
    rows = []
    for _ in range(steps):
        offsets = torch.arange(0, full * batch_size, batch_size)  # sampling-path-ok: once per run (memo), CPU draws as theirs
        kf = torch.randint(batch_size, (full,), generator=g) + offsets  # sampling-path-ok: as above
        if rest:
            kf = torch.cat([kf, torch.randint(rest, (1,), generator=g) + full * batch_size])  # sampling-path-ok: as above
        rows.append(kf)
    return torch.stack(rows)


@dataclass(frozen=True)
class Propagation:
    """Per frame: its batch's keyframe slot (``near``), the previous batch's (``far``; the first
    batch has none: ``far = near`` and ``near_share = 1``) and the share of ``near`` in the blend."""

    near: torch.Tensor         # [F] long
    far: torch.Tensor          # [F] long
    near_share: torch.Tensor   # [F] float32
    _cast: dict = field(default_factory=dict, repr=False, compare=False)

    def share_in(self, dtype: torch.dtype) -> torch.Tensor:
        """``near_share`` as ``[1, F, 1, 1]`` in ``dtype``, cast once per dtype (the plan lives for a run; the
        attention calls that blend with it are many)."""
        share = self._cast.get(dtype)
        if share is None:
            share = self._cast[dtype] = self.near_share.to(dtype)[None, :, None, None]
        return share


def propagation_weights(frames: int, batch_size: int, device: torch.device | str = "cpu") -> Propagation:
    """The authors' blend (``TokenFlowBlock.forward``): for frame ``s`` of batch ``i > 0``,
    ``d1 = |s - p1|``, ``d2 = |s - p2|`` with ``p1 = i * batch_size + batch_size // 2`` and
    ``p2 = (i - 1) * batch_size + batch_size // 2`` (the batches' middles), and the weight of
    batch ``i``'s keyframe ``sigmoid(d2 / (d1 + d2))``; the first batch takes its keyframe alone. On ``device``."""
    s = torch.arange(frames, device=device)
    near = s // batch_size
    far = (near - 1).clamp(min=0)
    p1 = near * batch_size + batch_size // 2
    p2 = (near - 1) * batch_size + batch_size // 2
    d1, d2 = (s - p1).abs(), (s - p2).abs()
    share = torch.sigmoid(d2 / (d1 + d2))
    share = torch.where(near == 0, torch.ones_like(share), share)
    return Propagation(near, far, share)


def normalised(x: torch.Tensor) -> torch.Tensor:
    """Rows divided by their norm, as the authors' ``batch_cosine_sim`` (no epsilon)."""
    return x / x.norm(dim=-1, keepdim=True)


def nearest_tokens(features: torch.Tensor, keyframe_features: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                   group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest-neighbour field: for every token of every frame, the most cosine-similar token
    of the frame's ``near`` keyframe and of its ``far`` one (``[F, tokens]`` each, indices into a
    keyframe's tokens). ``features`` ``[F, tokens, dim]``: the source branch's self-attention
    inputs of the frames; ``keyframe_features`` ``[keyframes, tokens, dim]``: the same of the
    keyframes. Computed ``group`` frames at a time (the authors' batch), so that the similarity
    matrix is never larger than theirs. Upcast to float32."""
    x = normalised(features.float())
    y = normalised(keyframe_features.float())
    first, second = [], []
    for a in range(0, x.shape[0], group):
        xs = x[a:a + group]
        first.append(torch.bmm(xs, y.index_select(0, near[a:a + group]).transpose(1, 2)).argmax(dim=-1))
        second.append(torch.bmm(xs, y.index_select(0, far[a:a + group]).transpose(1, 2)).argmax(dim=-1))
    return torch.cat(first), torch.cat(second)


def propagate(keyframe_outputs: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
              plan: Propagation) -> torch.Tensor:
    """Every frame's self-attention output from the keyframes': ``keyframe_outputs``
    ``[branches, keyframes, tokens, c]`` (each branch's keyframes, as the pivotal pass made them)
    gathered token by token through the field (``first``: into each frame's ``near`` keyframe,
    ``second``: into its ``far`` one; the same field for every branch, as the authors') and
    blended ``w * near + (1 - w) * far``. Returns ``[branches, F, tokens, c]``."""
    branches, _, tokens, c = keyframe_outputs.shape
    frames = first.shape[0]

    def take(slots: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = keyframe_outputs.index_select(1, slots)                      # [branches, F, tokens, c]
        return rows.gather(2, index[None, :, :, None].expand(branches, frames, tokens, c))

    w = plan.share_in(keyframe_outputs.dtype)
    return w * take(plan.near, first) + (1 - w) * take(plan.far, second)


def keyframe_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, branches: int, inject: bool,
                       attend) -> torch.Tensor:
    """The pivotal pass's self-attention (the authors' ``register_extended_attention_pnp``): the
    call's rows are ``branches`` blocks of the keyframes, the source's first. The source's rows
    attend within their own frame; every other branch's keyframe attends to the keys and values of
    all of that branch's keyframes ("extended attention"). With ``inject`` (a decoder layer at a
    step of Plug-and-Play's schedule) the edited branches take the source's queries and keys first.
    ``attend(q, k, v)``: plain attention of ``[rows, tokens, heads * dim]`` tensors."""
    keyframes = q.shape[0] // branches
    tokens, c = k.shape[1], k.shape[2]
    if inject:
        q = q[:keyframes].repeat(branches, 1, 1)
        k = k[:keyframes].repeat(branches, 1, 1)
    source = attend(q[:keyframes], k[:keyframes], v[:keyframes])
    if branches == 1:
        return source
    edited = branches - 1

    def joint(t: torch.Tensor) -> torch.Tensor:
        t = t[keyframes:].reshape(edited, 1, keyframes * tokens, c)
        return t.expand(edited, keyframes, keyframes * tokens, c).reshape(edited * keyframes, keyframes * tokens, c)

    return torch.cat([source, attend(q[keyframes:], joint(k), joint(v))])


@dataclass(frozen=True)
class TokenFlowSchedule:
    """Plug-and-Play's thresholds as the authors' code applies them: the source's queries and keys
    injected at the first ``int(steps * attention)`` steps, its features at the first
    ``int(steps * features)`` (``scheduler.timesteps[:int(n_timesteps * pnp_attn_t)]``)."""

    attention: float   # pnp_attn_t
    features: float    # pnp_f_t

    def injects_attention(self, step: int, steps: int) -> bool:
        return step < int(steps * self.attention)

    def injects_features(self, step: int, steps: int) -> bool:
        return step < int(steps * self.features)
