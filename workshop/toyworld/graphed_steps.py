"""The flow teacher's and its distillation's training steps at a GPU's speed (``train_flow --cuda-graph``).

A training step of the toy flow DiT is a few thousand small kernels: on a GPU it is bound by the
CPU issuing them (0.04 s a step of batch 32 on an H100, the GPU mostly idle; docs/toyworld.md), and
the layout of a scene wants tens of thousands of steps. Two things take the CPU out of the step:

- ``ChunkedInputs``: a chunk of steps' inputs made at once on the device (each step's scenes are
  ``train_scenes.step_scenes``'s, rendered and encoded a few hundred at a time; the noise levels,
  noise and caption dropout drawn on the device from a generator seeded per chunk), then sliced;
  ``ChunkedDistilInputs`` the guidance distillation's (the guidance drawn per sample instead of the
  dropout, and the teacher's contexts).
- ``GraphedGrads``: the forward and backward of the loss captured once in a CUDA graph
  (``torch.cuda.graph``'s whole-network capture) and replayed on static input buffers, so a step is
  a few copies, one replay, the gradient clip, a fused AdamW and a foreach EMA. In the distillation
  the teacher's guided velocity (its no-grad forward on the pair of rows) is captured in the same graph.

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
    at a time on ``--device``: step ``k``'s scenes are ``step_scenes(args, scenes_from + k)``'s (as the eager
    step's), its captions dropped in ``--dropout`` of the samples, noise levels logit-normal moved by
    ``shift``, the rectified-flow interpolation ``x_s = (1 - s) x0 + s noise`` and its velocity ``noise - x0``.
    One resolution for every step (the chunk is one tensor). The draws come from a device generator seeded
    per chunk with ``seed_base``."""

    def __init__(self, args, ae, text: dict, index: dict, res: int, shift: float, chunk: int = 256,
                 encode_batch: int = 256, scenes_from: int = 0, seed_base: int = 5_000_000) -> None:
        self.args, self.ae, self.text, self.index = args, ae, text, index
        self.res, self.shift, self.chunk, self.encode_batch = res, shift, chunk, encode_batch
        self.scenes_from, self.seed_base = scenes_from, seed_base
        self.first, self.data = None, None

    @torch.no_grad()
    def _make(self, first: int) -> None:
        from workshop.toyworld.train_flow import latents
        args, device = self.args, self.text["ctx"].device
        scenes = [sc for k in range(first, first + self.chunk)
                  for sc in TS.step_scenes(args, self.scenes_from + k, args.batch)]
        x0 = torch.cat([latents(args, self.ae, scenes[i:i + self.encode_batch], self.res)
                        for i in range(0, len(scenes), self.encode_batch)])
        idx = torch.tensor([self.index[sc.caption] for sc in scenes], device=device)
        gen = torch.Generator(device=device).manual_seed(args.seed * 1_000_003 + self.seed_base + first)
        self.first = first
        self.data = self._draw(x0, idx, gen, scenes)

    def _draw(self, x0: torch.Tensor, idx: torch.Tensor, gen: torch.Generator, scenes: list) -> Inputs:
        from workshop.toyworld.train_flow import noised, without_captions
        drop = torch.rand(len(x0), generator=gen, device=gen.device) < self.args.dropout
        ctx, pooled = without_captions(self.text, self.text["ctx"][idx], self.text["pooled"][idx], drop)
        s, noise, xs = noised(x0, gen, self.shift)
        return xs, s, ctx, pooled, noise - x0

    def __call__(self, step: int) -> tuple[Inputs, int]:
        first = (step - 1) // self.chunk * self.chunk + 1
        if first != self.first:
            self._make(first)
        k = (step - first) * self.args.batch
        return tuple(t[k:k + self.args.batch] for t in self.data), self.res


class ChunkedDistilInputs(ChunkedInputs):
    """The guidance distillation's inputs (``train_flow.distil``), chunked as ``ChunkedInputs``:
    ``(x_s, s, ctx, pooled, guidance, teacher ctx, teacher pooled)``. Step ``k``'s scenes are the eager
    distillation's (``step_scenes(args, 1_000_000 + k)``), every caption kept, the noise levels moved by
    ``shift``, the guidance uniform over ``guidance_range`` and 1 in a share ``guidance_one`` of the samples;
    the teacher's contexts are ``taught``'s (its own text encoder's, ``--teacher-text``) for the same captions.
    With ``regions`` (``scenes -> (cover, named)``, ``train_flow.word_regions``, for the attention loss) each
    step's word regions follow, drawn on the device once a chunk."""

    def __init__(self, args, ae, text: dict, index: dict, res: int, shift: float, taught: dict,
                 guidance_range: tuple[float, float], guidance_one: float = 0.0, chunk: int = 256,
                 regions: Callable[[list], tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        super().__init__(args, ae, text, index, res, shift, chunk, scenes_from=1_000_000, seed_base=7_000_000)
        self.taught, self.guidance_range, self.guidance_one = taught, guidance_range, guidance_one
        self.regions = regions

    def _draw(self, x0: torch.Tensor, idx: torch.Tensor, gen: torch.Generator, scenes: list) -> Inputs:
        from workshop.toyworld.train_flow import noised
        s, _, xs = noised(x0, gen, self.shift)
        lo, hi = self.guidance_range
        scale = lo + (hi - lo) * torch.rand(len(x0), generator=gen, device=gen.device)
        if self.guidance_one:
            one = torch.rand(len(x0), generator=gen, device=gen.device) < self.guidance_one
            scale = torch.where(one, torch.ones_like(scale), scale)
        inputs = (xs, s, self.text["ctx"][idx], self.text["pooled"][idx], scale,
                  self.taught["ctx"][idx], self.taught["pooled"][idx])
        if self.regions is None:
            return inputs
        return (*inputs, *self.regions(scenes))


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
