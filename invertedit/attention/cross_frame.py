"""Cross-frame (extended) self-attention of a clip: every frame's self-attention queries read the
keys and values of anchor frames of the same clip instead of its own.

- "first and previous": Tune-A-Video's sparse-causal attention (Wu et al., 2023, Eq. 3), which
  FateZero (Qi et al., 2023) uses unchanged: frame f attends to frames 0 and f - 1 (frame 0 to
  itself twice, as the authors' ``former_frame_index[0] = 0``: attention over a duplicated key set
  is the same attention). The default.
- "first": Text2Video-Zero's cross-frame attention (Khachatryan et al., 2023): frame 0 only.
- "first, previous and self": the sparse-causal anchors and the frame itself.
- "listed frames": the frames the user lists, for every frame.

Frames listed in ``extra`` are added to every frame's anchors. Each frame has the same number of
anchors, so the keys of a call are one rectangular gather: ``anchor_rows`` gives the row index of a
call's layout (chunks of F or 2F rows; row r is frame r % F of branch r // F)."""
from __future__ import annotations

ANCHORS = ("first and previous", "first", "first, previous and self", "listed frames")


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
        own = {"first and previous": (0, previous), "first": (0,), "first, previous and self": (0, previous, f),
               "listed frames": ()}[rule]
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
