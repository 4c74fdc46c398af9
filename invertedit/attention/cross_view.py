"""Cross-view attention of a view set: every view's self-attention also reads reference views' keys
and values, so that the views of one asset are edited alike (Wu et al., "GaussCtrl: Multi-View
Consistent Text-Driven 3D Gaussian Splatting Editing", ECCV 2024: attention-based latent code
alignment; the code: ActiveVisionLab/gaussctrl, ``gaussctrl/utils.py`` ``CrossViewAttnProcessor``).

- "mean of references (GaussCtrl)": the output of a view's self-attention is ``w * A(q, k, v) +
  (1 - w) * mean_j A(q, k_j, v_j)``: its own attention and, one softmax per reference view j, its
  queries on view j's keys and values (the whole key sequence of j's row), averaged. GaussCtrl's
  UNet runs it with ``w = 0.6`` and 4 reference views (its ControlNet with ``w = 0``), at every
  self-attention layer and step of the edit. The default.
- "extended keys (one softmax)": one softmax over the view's own keys and the references'
  (Tune-A-Video's and DGE's extended attention; ``self_weight`` is not used).

The references are ``R`` views of the set; a call's rows are chunks (CFG) of V views (a view set) or
2V (a source/target pair in blocks, ``hostkit/frames.py``): row r is view r % V of branch r // V,
and its references are the rows of the same chunk and branch. GaussCtrl draws its 4 references at
random, one in each quarter of the views (``gc_pipeline.py``: ``randint(anchor, next anchor)``);
``reference_views`` takes the first view of each of R equal parts, deterministic."""
from __future__ import annotations

from typing import Callable

import torch

MODES = ("mean of references (GaussCtrl)", "extended keys (one softmax)")
REFERENCES = 4       # GaussCtrl's ref_view_num
SELF_WEIGHT = 0.6    # GaussCtrl's self_attn_coeff on the UNet


def parse_views(text: str) -> tuple[int, ...]:
    """A list of view numbers ("0, 4" or "0 4"); ValueError naming what is not a whole number."""
    out = []
    for part in text.replace(",", " ").split():
        try:
            out.append(int(part))
        except ValueError:
            raise ValueError(f"'{part}' is not a view number") from None
    return tuple(out)


def reference_views(views: int, count: int = REFERENCES, listed: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The reference views of a set of ``views``: the ``listed`` ones (-1: the last), or else the
    first view of each of ``count`` equal parts (GaussCtrl's anchors ``views * i // count``; all
    views where ``count`` >= ``views``). ValueError for a view out of range or a repeat."""
    if listed:
        bad = [a for a in listed if not -views <= a < views]
        if bad:
            raise ValueError(f"view {bad[0]} is out of range for a set of {views} views (0 to {views - 1}, or -1 for "
                             f"the last)")
        refs = tuple(a % views for a in listed)
        if len(set(refs)) != len(refs):
            raise ValueError(f"views {', '.join(map(str, listed))} name a view twice")
        return refs
    if count < 1:
        raise ValueError(f"references {count}: at least 1")
    count = min(count, views)
    return tuple(views * i // count for i in range(count))


def reference_rows(refs: tuple[int, ...], views: int, chunks: int, rows: int) -> list[int]:
    """The row index, reference-major, of a call of ``chunks`` chunks of ``rows`` rows (V or 2V):
    for each reference view, for every row of the call in order, the row of that view in the row's
    own chunk and branch."""
    return [c * rows + (r // views) * views + a for a in refs for c in range(chunks) for r in range(rows)]


class ReferenceIndex:
    """The reference rows of a view set's calls (``reference_rows``) as a long tensor, made once per call layout
    (chunks, rows) and device, so that an attention call adds no tensor built on the CPU."""

    def __init__(self, refs: tuple[int, ...], views: int):
        self.refs, self.views = tuple(refs), views
        self.memo: dict = {}

    def __call__(self, chunks: int, rows: int, device: torch.device) -> torch.Tensor:
        key = (chunks, rows, device)
        index = self.memo.get(key)
        if index is None:
            index = self.memo[key] = torch.tensor(reference_rows(self.refs, self.views, chunks, rows), dtype=torch.long,
                                                  device=device)
        return index


def aligned_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, index: torch.Tensor, refs: int,
                      self_weight: float, attend: Callable[..., torch.Tensor], mode: str = MODES[0],
                      token_dim: int = 1) -> torch.Tensor:
    """A view set's self-attention with its references (the module's docstring). ``q, k, v``: the
    call's tensors, batch first, tokens on ``token_dim``; ``index``: ``reference_rows`` on their
    device; ``attend(q, k, v)``: the host's attention, returning ``[batch, tokens, channels]``.
    The references' attentions are one call over ``refs`` x the batch's rows."""
    batch = q.shape[0]
    kr, vr = k.index_select(0, index), v.index_select(0, index)
    if mode == MODES[1]:
        per_ref = lambda t: t.reshape(refs, batch, *t.shape[1:]).unbind(0)   # noqa: E731
        return attend(q, torch.cat((k, *per_ref(kr)), dim=token_dim), torch.cat((v, *per_ref(vr)), dim=token_dim))
    qr = q.expand(refs, *q.shape).reshape(refs * batch, *q.shape[1:])
    mean = attend(qr, kr, vr).unflatten(0, (refs, batch)).mean(0)
    if self_weight == 0.0:
        return mean
    return torch.lerp(mean, attend(q, k, v), self_weight)
