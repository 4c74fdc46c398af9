"""The flow teacher's training step at a GPU's speed (``train_flow --cuda-graph``).

A training step of the toy flow DiT is a few thousand small kernels: on a GPU it is bound by the
CPU issuing them (0.04 s a step of batch 32 on an H100, the GPU mostly idle; docs/toyworld.md), and
the layout of a scene wants tens of thousands of steps. Two things take the CPU out of the step:

- ``ChunkedInputs``: a chunk of steps' inputs made at once on the device (each step's scenes are
  ``train_scenes.step_scenes``'s, rendered and encoded a few hundred at a time; the noise levels,
  noise and caption dropout drawn on the device from a generator seeded per chunk), then sliced.
- ``GraphedGrads``: the forward and backward of the loss captured once in a CUDA graph
  (``torch.cuda.graph``'s whole-network capture) and replayed on static input buffers, so a step is
  a few copies, one replay, the gradient clip, a fused AdamW and a foreach EMA.

Where the capture fails the step runs eagerly on the same inputs (logged).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from workshop.toyworld import train_scenes as TS
from workshop.toyworld.train import log

Inputs = tuple[torch.Tensor, ...]


class ChunkedInputs:
    """``step -> ((x_s, s, ctx, pooled, target), res)`` for the flow teacher's loss, made ``chunk`` steps
    at a time on ``--device``: step ``k``'s scenes are ``step_scenes(args, k)``'s (as the eager step's),
    its captions dropped in ``--dropout`` of the samples, noise levels logit-normal moved by ``shift``,
    the rectified-flow interpolation ``x_s = (1 - s) x0 + s noise`` and its velocity ``noise - x0``.
    One resolution for every step (the chunk is one tensor)."""

    def __init__(self, args, ae, text: dict, index: dict, res: int, shift: float, chunk: int = 256,
                 encode_batch: int = 256) -> None:
        self.args, self.ae, self.text, self.index = args, ae, text, index
        self.res, self.shift, self.chunk, self.encode_batch = res, shift, chunk, encode_batch
        self.first, self.data = None, None

    @torch.no_grad()
    def _make(self, first: int) -> None:
        from workshop.toyworld.train_flow import latents, noised, without_captions
        args, device = self.args, self.text["ctx"].device
        scenes = [sc for k in range(first, first + self.chunk) for sc in TS.step_scenes(args, k, args.batch)]
        x0 = torch.cat([latents(args, self.ae, scenes[i:i + self.encode_batch], self.res)
                        for i in range(0, len(scenes), self.encode_batch)])
        idx = torch.tensor([self.index[sc.caption] for sc in scenes], device=device)
        gen = torch.Generator(device=device).manual_seed(args.seed * 1_000_003 + 5_000_000 + first)
        drop = torch.rand(len(scenes), generator=gen, device=device) < args.dropout
        ctx, pooled = without_captions(self.text, self.text["ctx"][idx], self.text["pooled"][idx], drop)
        s, noise, xs = noised(x0, gen, self.shift)
        self.first = first
        self.data = (xs, s, ctx, pooled, noise - x0)

    def __call__(self, step: int) -> tuple[Inputs, int]:
        first = (step - 1) // self.chunk * self.chunk + 1
        if first != self.first:
            self._make(first)
        k = (step - first) * self.args.batch
        return tuple(t[k:k + self.args.batch] for t in self.data), self.res


def eager_grads(params: Sequence[torch.Tensor], loss_of: Callable[..., torch.Tensor],
                inputs_of: Callable[[int], tuple[Inputs, int]]) -> Callable[[int], tuple[torch.Tensor, int]]:
    """``step -> (loss, res)`` with the parameters' gradients of ``loss_of(*inputs)`` in their ``.grad``."""
    def run(step: int):
        inputs, res = inputs_of(step)
        loss = loss_of(*inputs)
        for p in params:
            p.grad = None
        loss.backward()
        return loss.detach(), res
    return run


class GraphedGrads:
    """``eager_grads`` with the forward and backward captured in a CUDA graph at the first step and
    replayed after it: the inputs are copied into the graph's static buffers, the loss and every
    parameter's ``.grad`` are the graph's own tensors, written again by each replay (so nothing may set
    a ``.grad`` to None after the capture). Falls back to ``eager_grads`` where the capture fails."""

    def __init__(self, params: Sequence[torch.Tensor], loss_of: Callable[..., torch.Tensor],
                 inputs_of: Callable[[int], tuple[Inputs, int]], warmup: int = 3) -> None:
        self.params, self.loss_of, self.inputs_of, self.warmup = list(params), loss_of, inputs_of, warmup
        self.graph, self.static, self.loss, self.eager = None, None, None, None

    def _capture(self, inputs: Inputs) -> None:
        self.static = [t.clone() for t in inputs]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):   # the first runs (lazy initialisation) outside the capture
            for _ in range(self.warmup):
                for p in self.params:
                    p.grad = None
                self.loss_of(*self.static).backward()
        torch.cuda.current_stream().wait_stream(side)
        for p in self.params:
            p.grad = None
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.loss = self.loss_of(*self.static)
            self.loss.backward()
        self.graph = graph

    def __call__(self, step: int) -> tuple[torch.Tensor, int]:
        if self.eager is not None:
            return self.eager(step)
        inputs, res = self.inputs_of(step)
        first = self.graph is None
        if first:
            try:
                self._capture(inputs)
            except Exception as e:   # noqa: BLE001 (any failure: the eager step is the same training)
                log(f"CUDA graph capture failed ({type(e).__name__}: {e}); training eagerly")
                self.eager = eager_grads(self.params, self.loss_of, self.inputs_of)
                return self.eager(step)
        for dst, src in zip(self.static, inputs):
            dst.copy_(src)
        self.graph.replay()
        if first:   # the replayed loss against the same step's loss run eagerly (no gradients)
            with torch.no_grad():
                eager = self.loss_of(*self.static)
            log(f"CUDA graph captured at step {step}: its loss {float(self.loss.detach()):.6f}, eagerly {float(eager):.6f}")
        return self.loss, res
