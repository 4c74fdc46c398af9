"""RAVE inside the host (math in ``grid.py``): a patched clone of the MODEL whose every model call
denoises the clip's frames as grids (the host's APPLY_MODEL wrapper ``GridStep``): per chunk of the
call (conditional, unconditional), the frames are tiled ``n x n`` in the step's shuffled order, the
UNet runs once on all the grids, and the grids are cut back into the frames in their own order, so
that the host's stock sampler steps every frame as usual. The authors' ControlNet (depth) guidance is
not part of the wrapper: the host's ControlNet hints are per frame (the wrapper refuses one)."""
from __future__ import annotations

import torch

from ...hostkit.errors import NodeInputError
from ...hostkit.patches import select_rows, wrap_model_calls
from ...hostkit.sampling import check_model_family
from ...hostkit.steps import sampling_step
from .grid import from_grids, grid_orders, to_grids

STEP_KEY = "invertedit_rave_step"


class GridStep:
    """APPLY_MODEL wrapper: a model call on the frames as one call on their grids."""

    def __init__(self, n: int, shuffle: bool, seed: int, node: str):
        self.n, self.shuffle, self.seed, self.node = n, shuffle, seed, node
        self._memo: dict = {}

    def _orders(self, steps: int, frames: int, device: torch.device) -> torch.Tensor:
        key = (steps, frames, device)
        if key not in self._memo:
            self._memo[key] = grid_orders(self.seed, steps, frames, self.shuffle).to(device)
        return self._memo[key]

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = list(transformer_options.get("cond_or_uncond", [0]))
        rows, n = x.shape[0], self.n
        frames = rows // len(chunks)
        if frames % (n * n):
            raise NodeInputError(self.node, f"the sampler runs {frames} frames, not a multiple of grid_size^2 = "
                                            f"{n * n}; give a grid_size whose square divides the frame count (the "
                                            f"authors pad the clip to a multiple), or trim the clip.")
        if control is not None:
            raise NodeInputError(self.node, "a ControlNet is applied to the conditioning; its hints are per frame, "
                                            "not per grid. Sample without it.")
        step, steps = sampling_step(transformer_options)
        order = self._orders(steps, frames, x.device)[step]
        grids = frames // (n * n)
        offsets = torch.arange(len(chunks), device=x.device)[:, None] * frames
        first = (order[::n * n][None] + offsets).reshape(-1)           # each grid's first frame, per chunk

        def tile(value):
            return torch.cat([to_grids(part, order, n) for part in value.split(frames)])

        options = {**transformer_options, "sigmas": select_rows(transformer_options.get("sigmas", t), first, rows)}
        out = executor(tile(x), select_rows(t, first, rows), None if c_concat is None else tile(c_concat),
                       select_rows(c_crossattn, first, rows), None, options,
                       **{k: select_rows(v, first, rows) for k, v in kwargs.items()})
        return torch.cat([from_grids(part, order, n) for part in out.split(grids)])


def rave(node: str, model, grid_size: int, shuffle: bool, seed: int):
    """A clone of ``model`` that denoises a clip's frames as RAVE's shuffled grids."""
    check_model_family(model, node)
    if grid_size < 1:
        raise NodeInputError(node, f"input 'grid_size' is {grid_size}; give 1 or more (paper: 3, grids of 3 x 3 frames).")
    m = model.clone()
    wrap_model_calls(m, STEP_KEY, GridStep(grid_size, shuffle, seed, node))
    return m
