"""Which step of the running sampler a patch is called at, from the host's transformer options.

Branching on the step needs its number on the CPU, and the sigmas live on the model's device:
reading one makes the CPU wait for the device. Every attention call of one UNet call receives
the same sigma tensor, and every call of a run the same ``sample_sigmas``, so each value is read
once (a one-slot memo keyed by the tensor object itself, which it holds, so a new tensor can never
be mistaken for it): one wait per UNet call instead of one per attention call (32 at SD1.5, 140
at SDXL), and no tensor made on the CPU in the sampling path. The memo is not run state: the
same tensors give the same answer.
"""
from __future__ import annotations

import torch


class _Memo:
    """One ``tensor -> value`` pair, holding the tensor (identity is the key)."""

    __slots__ = ("key", "value")

    def __init__(self):
        self.key, self.value = None, None

    def get(self, tensor: torch.Tensor, read):
        if self.key is not tensor:
            self.key, self.value = tensor, read(tensor)
        return self.value


_table, _sigma, _timesteps = _Memo(), _Memo(), _Memo()


def sigma_list(sample_sigmas: torch.Tensor) -> list[float]:
    """A run's sigmas as Python floats, read once per run."""
    return _table.get(sample_sigmas, lambda t: t.detach().float().tolist())  # sampling-path-ok: once per run (memo)


def sigma_value(sigma: torch.Tensor | float) -> float:
    """The current sigma (a tensor's first value) as a Python float, read once per UNet call."""
    if not isinstance(sigma, torch.Tensor):
        return float(sigma)
    return _sigma.get(sigma, lambda t: t.detach().reshape(-1)[0].float().item())  # sampling-path-ok: once per call (memo)


def step_at(sample_sigmas: torch.Tensor, sigma: torch.Tensor | float) -> tuple[int, int]:
    """(step index, number of steps) of a run over ``sample_sigmas`` when the model is called at
    ``sigma`` (a tensor; its first value is used): the first sigma of the run within
    ``1e-6 + 1e-4 * sigma`` of it (``torch.isclose``'s test), else the last step."""
    table, s = sigma_list(sample_sigmas), sigma_value(sigma)
    steps = len(table) - 1
    return next((i for i, v in enumerate(table) if abs(v - s) <= 1e-6 + 1e-4 * abs(s)), steps), steps


def timestep_at(model_sampling, sample_sigmas: torch.Tensor, step: int) -> float:
    """The model's (rounded) DDPM timestep at ``step`` of a run over ``sample_sigmas``: the run's
    timesteps are read once per run (keyed by ``sample_sigmas``; a run has one model)."""
    table = _timesteps.get(sample_sigmas, lambda s: model_sampling.timestep(s.float()).round().tolist())  # sampling-path-ok: once per run (memo)
    return table[min(step, len(table) - 1)]


#: The ``transformer_options`` key of a model call's time, as Python values: (step, steps, sigma, the run's sigmas).
#: ``stamp_clock`` writes it around the denoiser (outside a region the host's TorchCompileModel compiles), and the
#: patches inside read it from the options they are handed: a compiled graph then takes the step as an input
#: (Dynamo makes it a symbolic int after its first change, and recompiles only where a branch on it flips) where a
#: lookup in this module's memos inside the graph was a constant it guarded on, recompiling at every step.
CLOCK_KEY = "invertedit_clock"


def stamp_clock(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
    """APPLY_MODEL wrapper: the call's ``CLOCK_KEY``, read once a call (one wait for the device)."""
    run = transformer_options.get("sample_sigmas")
    if run is not None:
        sigma = transformer_options.get("sigmas", t)
        step, steps = step_at(run, sigma)
        transformer_options = {**transformer_options,
                               CLOCK_KEY: (step, steps, sigma_value(sigma), tuple(sigma_list(run)))}
    return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


def sampling_step(extra_options: dict) -> tuple[int, int]:
    """(step index, number of steps) inside an attention or block patch, from its ``extra_options``."""
    clock = extra_options.get(CLOCK_KEY)
    if clock is not None:
        return clock[0], clock[1]
    return step_at(extra_options["sample_sigmas"], extra_options["sigmas"])


def call_time(extra_options: dict) -> tuple[float, list[float]]:
    """(the call's sigma, the run's sigmas) inside an attention or block patch, from its ``extra_options``."""
    clock = extra_options.get(CLOCK_KEY)
    if clock is not None:
        return clock[2], list(clock[3])
    return sigma_value(extra_options["sigmas"]), sigma_list(extra_options["sample_sigmas"])


def post_cfg_step(args: dict) -> tuple[int, int]:
    """(step index, number of steps) inside a post-CFG function, from its ``args``."""
    return step_at(args["model_options"]["transformer_options"]["sample_sigmas"], args["sigma"])
