"""Cross-frame (extended) self-attention of a clip: every frame's self-attention queries read the
keys and values of anchor frames of the same clip instead of its own.

- "first and previous": Tune-A-Video's sparse-causal attention (Wu et al., 2023, Eq. 3), the
  default of FateZero's ``SparseCausalAttention`` (Qi et al., 2023; ``SparseCausalAttention_index
  = [-1, 'first']``, in that key order): frame f attends to frames f - 1 and 0 (frame 0 to itself
  twice, as the authors clip the index: attention over a duplicated key set is the same
  attention). The default.
- "middle": the middle frame ``(F - 1) // 2`` for every frame, what FateZero's shipped editing
  configs set (``SparseCausalAttention_index: ['mid']``, with ``least_sc_channel: 640``: layers
  narrower than 640 channels keep their own frame, ``min_channels`` of the patch).
- "first": Text2Video-Zero's cross-frame attention (Khachatryan et al., 2023): frame 0 only.
- "first, previous and self": the sparse-causal anchors and the frame itself.
- "listed frames": the frames the user lists, for every frame.

Frames listed in ``extra`` are added to every frame's anchors. Each frame has the same number of
anchors, so the keys of a call are one rectangular gather: ``anchor_rows`` gives the row index of a
call's layout (chunks of F or 2F rows; row r is frame r % F of branch r // F)."""
from __future__ import annotations

ANCHORS = ("first and previous", "first", "first, previous and self", "middle", "listed frames")


def parse_frames(text: str) -> tuple[int, ...]:
    """A list of frame numbers ("0, 4" or "0 4"); ValueError naming what is not a whole number."""
    out = []
    for part in text.replace(",", " ").split():
        try:
            out.append(int(part))
        except ValueError:
            raise ValueError(f"'{part}' is not a frame number") from None
    return tuple(out)


def frame_anchors(rule: str, frames: int, extra: tuple[int, ...] = ()) -> tuple[tuple[int, ...], ...]:
    """Each frame's anchor frames under ``rule`` (``ANCHORS``) and the listed ``extra`` frames."""
    if rule not in ANCHORS:
        raise ValueError(f"anchors '{rule}' is not one of {', '.join(ANCHORS)}")
    bad = [a for a in extra if not -frames <= a < frames]
    if bad:
        raise ValueError(f"frame {bad[0]} is out of range for a clip of {frames} frames (0 to {frames - 1}, or -1 "
                         f"for the last)")
    extra = tuple(a % frames for a in extra)
    if rule == "listed frames" and not extra:
        raise ValueError("anchors 'listed frames' needs frames listed in 'anchor_frames' (e.g. '0, 4')")
    out = []
    for f in range(frames):
        previous = max(f - 1, 0)
        own = {"first and previous": (previous, 0), "first": (0,), "first, previous and self": (previous, 0, f),
               "middle": ((frames - 1) // 2,), "listed frames": ()}[rule]
        out.append(own + extra)
    return tuple(out)


def anchor_rows(anchors: tuple[tuple[int, ...], ...], frames: int, chunks: int, rows: int) -> list[int]:
    """The flat row index of a call of ``chunks`` chunks of ``rows`` rows (F or 2F): for every row
    in order, the rows of its anchor frames in its own chunk and branch."""
    out = []
    for c in range(chunks):
        for r in range(rows):
            base = c * rows + (r // frames) * frames
            out.extend(base + a for a in anchors[r % frames])
    return out
