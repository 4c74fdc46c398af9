"""Post-CFG blends of a source/target pair inside the host: Prompt-to-Prompt's local blend (on a
UNet or on joint attention) keeps the target on the source outside the mask its attention policy's
maps make, after each step from its start (``attention/local_blend.py``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..attention.local_blend import blend_denoised, blend_start
from .errors import NodeInputError
from .run_state import run_state
from .steps import post_cfg_step, sigma_list, sigma_value


@dataclass
class TrajectoryCopies:
    """A run's copies of an inversion's trajectory, by the (device, dtype) of the latents sampled."""
    by_place: dict = field(default_factory=dict)


#: The share of the image a local blend's final mask keeps below which the run says the edit was discarded (the tiny
#: SD1 model at blend_threshold 0.99, its widget's maximum: 0.9% at 512 px, 3.5% at 256 px; at the paper's 0.3: all).
NEARLY_EMPTY = 0.05


class LocalBlendStep:
    """Post-CFG function of the local blend: from its start step on, the target's prediction is
    the one whose DDIM/Euler step lands on ``source + mask * (target - source)``, the mask made
    from the run's maps so far (``attention/local_blend.py``). Runs after a Direct Inversion's
    correction, so the source is the corrected one, as in the reference. With a ``trajectory`` (a
    flow inversion's, in sampling order, whose states the source row is given) the source's next
    latent is the trajectory's. The maps are the run's state of ``policy`` (its cross-attention
    calls add them)."""

    def __init__(self, policy, node: str, trajectory: torch.Tensor | None = None):
        self.policy, self.node, self.trajectory = policy, node, trajectory

    def source_next(self, x: torch.Tensor, step: int, options: dict) -> torch.Tensor | None:
        """The source row's latent after the step, where a trajectory gives it; None: the source row's
        own DDIM/Euler step."""
        if self.trajectory is None:
            return None
        kept: TrajectoryCopies = run_state(options, self, TrajectoryCopies, self.node)
        key = (x.device, x.dtype)
        if key not in kept.by_place:   # once per run, on the latent's device
            kept.by_place[key] = self.trajectory.to(x)
        return kept.by_place[key][step + 1]

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        options = args["model_options"]["transformer_options"]
        step, steps = post_cfg_step(args)
        if step < blend_start(self.policy.blend.start, steps):
            return denoised
        blend = run_state(options, self.policy, self.policy.make_state, self.node)
        if x.shape[0] != 2:
            raise NodeInputError(self.node, f"the sampler runs a batch of {x.shape[0]}; the local blend works on the "
                                            f"source/target pair from this node (row 0 source, row 1 target).")
        ratio = sigma_list(options["sample_sigmas"])[step + 1] / sigma_value(sigma)   # read once a run / a call
        outside = blend.outside(tuple(x.shape[-2:]), x.dtype)
        if step == steps - 1:
            self._say_if_nearly_empty(outside)
        if x.ndim > outside.ndim:   # an image latent with a frame axis (Qwen-Image's [batch, 16, 1, h, w])
            outside = outside.view(*outside.shape[:2], *([1] * (x.ndim - outside.ndim)), *outside.shape[2:])
        return blend_denoised(x, denoised, outside, ratio, self.source_next(x, step, options))

    def _say_if_nearly_empty(self, outside: torch.Tensor) -> None:
        """At the run's last step, say in the log when the blend's mask keeps almost none of the edit: at a threshold
        near its maximum the target comes out as the source (issue 78: "the edit disappears" without a word)."""
        kept = float(1.0 - outside[1].float().mean())  # sampling-path-ok: once a run, at its last step
        if kept < NEARLY_EMPTY:
            logging.warning("%s: the local blend's mask keeps %.1f%% of the image at blend_threshold %g, so the edit "
                            "is almost entirely discarded; lower blend_threshold (paper: 0.3), or check the blend words.",
                            self.node, 100 * kept, self.policy.blend.threshold)
