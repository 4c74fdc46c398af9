"""Which step of the running sampler a patch is called at, from the host's transformer options."""
from __future__ import annotations

import torch


def step_at(sample_sigmas: torch.Tensor, sigma: torch.Tensor) -> tuple[int, int]:
    """(step index, number of steps) of a run over ``sample_sigmas`` when the model is called at
    ``sigma`` (a tensor; its first value is used)."""
    sigma = sigma.reshape(-1)[0]
    hits = torch.nonzero(torch.isclose(sample_sigmas.float(), sigma.float(), rtol=1e-4, atol=1e-6)).flatten()
    return (int(hits[0]) if len(hits) else len(sample_sigmas) - 1), len(sample_sigmas) - 1


def sampling_step(extra_options: dict) -> tuple[int, int]:
    """(step index, number of steps) inside an attention or block patch, from its ``extra_options``."""
    return step_at(extra_options["sample_sigmas"], extra_options["sigmas"])


def post_cfg_step(args: dict) -> tuple[int, int]:
    """(step index, number of steps) inside a post-CFG function, from its ``args``."""
    return step_at(args["model_options"]["transformer_options"]["sample_sigmas"], args["sigma"])
