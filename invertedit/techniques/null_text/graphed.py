"""A function of static buffers captured once in a CUDA graph and replayed (``torch.cuda.graph``).

Null-text optimisation is a few hundred forward and backward passes of one UNet row. On a GPU such a
pass is bound by the CPU issuing its kernels (a stock SD1.5 step at 512 px: about 52 ms of wall time
for a fraction of that on the device, ../shared/HOST-NOTES.md), so the paper's recipe took 100 s on an
H100. A replayed graph issues the pass's kernels at once: only the device's time is left. The
function reads its inputs from tensors that stay where they are (the caller copies each step's values
into them) and its outputs are the graph's own tensors, written again by each replay.

Capture needs everything inside to run on the device without waiting for it (no ``.item()``, no copy
from pageable memory); anything that does makes the capture fail, and then the function runs as it is
from there on (``why_eager`` says why). The first call runs as it is (the libraries' lazy initialisation
happens outside the capture), then the function is captured on the same inputs and replayed once: a replay
that disagrees with that first call is not used. Each later call is a replay.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Outputs = tuple[torch.Tensor, ...]

#: Largest difference, relative to the largest value, between a replay and the same call run as it is
#: (the same kernels: equal in practice; room for kernels whose reductions are not ordered).
AGREEMENT = 1e-3


class Replayed:
    """``fn()`` (no arguments: it reads static buffers) returning a tuple of tensors; captured after its
    first call where ``capture`` is true and the outputs are on a CUDA device, replayed after. ``log``
    receives one line when the capture is made or given up."""

    def __init__(self, fn: Callable[[], Outputs], name: str, capture: bool = True,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.fn, self.name, self.log = fn, name, log
        self.calls = 0
        self.graph: Optional["torch.cuda.CUDAGraph"] = None
        self.out: Outputs = ()
        self.why_eager: Optional[str] = None if capture else "capture off"

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> Outputs:
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.out
        out = self.fn()
        if self.calls == 1 and self.why_eager is None:
            if not all(t.is_cuda for t in out):
                self.why_eager = "not on a CUDA device"
            else:
                self._capture(out)
        return out

    def _capture(self, eager: Outputs) -> None:
        """Capture ``fn`` on the inputs it was just called with (``eager``: what that call gave, its passes'
        intermediate tensors already freed: the capture does not hold two passes' memory at once), replay it once and
        keep the graph if the replay gives the same."""
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = self.fn()
            graph.replay()
        except Exception as exc:   # the capture failed: run as it is from here on
            self._give_up(f"the capture failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            return
        for r, e in zip(out, eager):
            scale = e.detach().abs().max().clamp(min=1e-12)
            if r.shape != e.shape or not bool(((r.detach() - e.detach()).abs().max() / scale) <= AGREEMENT):  # sampling-path-ok: once, at the capture
                self._give_up("its replay disagreed with the call run as it is")
                return
        self.graph, self.out = graph, out
        if self.log is not None:
            self.log(f"{self.name}: captured in a CUDA graph, replayed from its second call")

    def _give_up(self, why: str) -> None:
        self.why_eager = why
        if self.log is not None:
            self.log(f"{self.name}: runs eagerly, {why}")
