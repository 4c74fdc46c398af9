"""KV-Edit's kept keys and values on the CPU (the authors' offload, ``keep_values_on cpu``), brought to
the GPU one block call ahead (issue 77). The authors copy each block's tensors when the block runs and
the block waits for the copy: 3.2-3.8x a stock step on an H100 (docs/measurements.md). Here the copy of
the next call's tensors is queued on a side CUDA stream while this call's attention runs, from pinned
host memory (``hostkit.keepers.keep_on``), so the compute stream only waits where the copy is late.
On a CPU, or where the tensors already lie on the compute device, nothing is queued."""
from __future__ import annotations

import torch

Key = tuple   # (step, block kind, block index), as the inversion kept them


class AheadOfUse:
    """The kept tensors by ``Key``, handed over on the compute device; one per sampling run (its
    side stream and the copies in flight are the run's)."""

    def __init__(self, cache: dict):
        self.cache = cache
        keys = [k for k in cache if isinstance(k, tuple)]
        # the order the run asks for them: steps ascending, each step's blocks in the order they ran
        order = sorted(keys, key=lambda k: k[0])
        self.after = dict(zip(order, order[1:]))
        self.pending: dict[Key, tuple[tuple[torch.Tensor, ...], torch.cuda.Event]] = {}
        self.stream: torch.cuda.Stream | None = None

    def get(self, key: Key, like: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """``key``'s tensors on ``like``'s device and dtype (None where nothing was kept for it), and the
        next key's copy queued."""
        kept = self.cache.get(key)
        if kept is None:
            return None
        if like.device.type != "cuda" or kept[0].device == like.device:
            return tuple(t if (t.device, t.dtype) == (like.device, like.dtype) else t.to(like) for t in kept)
        main = torch.cuda.current_stream(like.device)
        queued = self.pending.pop(key, None)
        if queued is None:
            here = tuple(t.to(like.device, non_blocking=True) for t in kept)
        else:
            here, done = queued
            main.wait_event(done)
        self._queue(self.after.get(key), like.device, main)
        return tuple(t.to(like.dtype) for t in here)

    def _queue(self, key: Key | None, device: torch.device, main: torch.cuda.Stream) -> None:
        if key is None or key in self.pending or key not in self.cache:
            return
        if self.stream is None:
            self.stream = torch.cuda.Stream(device)
        with torch.cuda.stream(self.stream):
            tensors = tuple(t.to(device, non_blocking=True) for t in self.cache[key])
            done = torch.cuda.Event()
            done.record(self.stream)
        for t in tensors:   # made on the side stream, read on the compute stream: not reused before it has
            t.record_stream(main)
        self.pending[key] = (tensors, done)
