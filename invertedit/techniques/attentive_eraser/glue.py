"""Attentive Eraser inside the host (AAS: ``aas.py``; SARG and the background: ``sarg.py``): the layers AAS
edits on this UNet, and the GUIDER that checks each run against the inversion before it starts."""
from __future__ import annotations

from ...hostkit.errors import NodeInputError
from ...hostkit.guidance_driver import GuidanceDriver
from ...hostkit.inversion_patches import check_run, is_host_euler, sampler_name
from ...hostkit.layout import self_attention_layers

NAME = "Attentive Eraser"


def layer_range(model, start_layer: int, end_layer: int) -> tuple[dict, int, int]:
    """The UNet's self-attention layers (execution order) and the range AAS edits: -1 for ``start_layer`` is
    the decoder's first (the authors' 7 of SD's 16, 34 of SDXL's 70: the up blocks), -1 for ``end_layer``
    the last (16, 70)."""
    layers = self_attention_layers(model)
    count = len(layers)
    decoder = min((i for (block, _, _), i in layers.items() if block == "output"), default=0)
    start = decoder if start_layer < 0 else start_layer
    end = count if end_layer < 0 else end_layer
    if start >= count:
        raise NodeInputError(NAME, f"input 'start_layer' is {start_layer} but this UNet has {count} self-attention "
                                   f"layers (0 to {count - 1}); give -1 for the decoder's first ({decoder}, the "
                                   f"authors' choice) or a layer below {count}.")
    if end <= start:
        raise NodeInputError(NAME, f"input 'end_layer' ({end}) must be above start_layer ({start}): AAS would edit no "
                                   f"layer; give -1 for the last ({count}).")
    return layers, start, end


class EraserGuider(GuidanceDriver):
    """The SARG GUIDER: before a run, the run must retrace the whole inversion with the DDIM/Euler step (the
    background is kept on its trajectory, step by step, by landing each step on it)."""

    def __init__(self, model, policy, conditioning, inversion):
        super().__init__(model, policy, {"plain": conditioning, "removal": conditioning})
        self.inversion = inversion

    def prepare_run(self, noise, latent_image, sampler, sigmas) -> None:
        start = check_run(self.inversion, self.model_patcher, noise, latent_image, sampler, sigmas, node=NAME,
                          cfg=self.cfg)
        if start != self.inversion.start_step:
            raise NodeInputError(NAME, f"the run starts at step {start} of the inversion's schedule, not at its start "
                                       f"({self.inversion.start_step}); sample every step: the inversion's SIGMAS "
                                       f"and LATENT as they are (KSamplerAdvanced: start_at_step "
                                       f"{self.inversion.start_step}).")
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' does not take the "
                                       f"DDIM step the background is kept with; use ddim (KSamplerSelect), the "
                                       f"authors' sampler (or euler).")
        super().prepare_run(noise, latent_image, sampler, sigmas)
