"""A source/target pair on a flow model (Stable Flow, Joint Attention Inject): the source row
following the image's flow inversion, at the source's own Flux guidance, and one noise in every row
of a generated pair."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..attention.policy import same_schedule, schedule_position
from ..inversion.record import Inversion
from .errors import NodeInputError
from .run_state import run_state
from .sampling import repeat_rows, seeded_noise
from .steps import sigma_list, sigma_value


@dataclass
class SourceRows:
    """A run of ``SourceRow``: for each layout of the batch (rows, chunks, device) the source rows' mask
    (per row and over a latent), the inversion's trajectory on the latent's device and dtype, and for
    each layout of Flux's guidance input the source rows' mask and guidance there."""
    rows: dict = field(default_factory=dict)
    trajectory: torch.Tensor | None = None
    guidance: dict = field(default_factory=dict)


class SourceRow:
    """APPLY_MODEL wrapper of a pair editor on a flow model (Stable Flow, Joint Attention Inject):
    once per model call, the source rows (row 0 of every chunk) take the inverted latent
    ``state_of(step, steps)`` says (its index in sampling order: by default the step's own, the
    inversion read back step for step; a generated pair's source row is its own) and the source's
    Flux guidance."""

    def __init__(self, inversion: Inversion | None, guidance: float, node: str,
                 state_of: Callable[[int, int], int] = lambda step, steps: step):
        self.inversion, self.guidance, self.state_of, self.node = inversion, guidance, state_of, node
        self.schedule = None if inversion is None else sigma_list(inversion.sampling_sigmas)

    def _check_run(self, transformer_options: dict, rows: int) -> None:
        if self.schedule is not None:
            run = sigma_list(transformer_options["sample_sigmas"])
            if not same_schedule(run, self.schedule):
                raise NodeInputError(self.node, f"the model is sampled on {len(run) - 1} steps that are not the "
                                                f"inversion's ({len(self.schedule) - 1}); sample with the inversion's "
                                                f"SIGMAS, {self.node}'s NOISE and the euler sampler.")
        if rows != 2:
            latent = ("the image's latent repeated twice (Repeat Latent Batch, amount 2)" if self.schedule is not None
                      else "a latent of 2 rows (Empty SD3 Latent Image, batch_size 2)")
            raise NodeInputError(self.node, f"the model is sampled on {rows} rows a prompt; {self.node} samples the "
                                            f"source/target pair: its CONDITIONING with {latent}.")

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        state: SourceRows = run_state(transformer_options, self, SourceRows, self.node)
        chunks = tuple(transformer_options.get("cond_or_uncond", [0]))
        rows = x.shape[0] // max(len(chunks), 1)
        key = (x.shape[0], chunks, x.device)
        if key not in state.rows:
            self._check_run(transformer_options, rows)
            source = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            source[::rows] = True
            state.rows[key] = (source, source.reshape(-1, *([1] * (x.ndim - 1))))   # per row, and over a latent
            if self.inversion is not None:
                state.trajectory = self.inversion.trajectory.to(x)
        source, over_latent = state.rows[key]
        if self.inversion is not None:
            step, half = schedule_position(self.schedule, sigma_value(transformer_options.get("sigmas", t)))  # the attention patches' sigma: one read
            if half or step >= len(self.schedule) - 1:
                raise NodeInputError(self.node, f"the model was called between the inversion's steps; {self.node} "
                                                f"samples with euler: use the euler sampler.")
            inverted = state.trajectory[self.state_of(step, len(self.schedule) - 1)]
            x = torch.where(over_latent, inverted, x)
        guidance = kwargs.get("guidance")
        if guidance is not None:
            # The host moves the model's extra inputs to the latent's device after this wrapper
            # (``BaseModel._apply_model``): Flux's guidance arrives where the conditioning was made (the
            # CPU on a GPU run), so its rows' choice is made on its device, once per run.
            layout = (key, guidance.shape, guidance.dtype, guidance.device)
            made = state.guidance.get(layout)
            if made is None:   # the source rows' guidance, for this layout of rows
                made = state.guidance[layout] = (source.to(guidance.device), torch.full_like(guidance, self.guidance))
            kwargs["guidance"] = torch.where(made[0], made[1], guidance)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


class SharedNoise:
    """A NOISE for a generated pair: one seeded noise (the host's, of one row) in every row, as the
    authors tile one noise over their prompts."""

    def __init__(self, seed: int, node: str):
        self.seed, self.node = seed, node

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        return repeat_rows(seeded_noise(samples[:1], self.seed), samples.shape[0])
