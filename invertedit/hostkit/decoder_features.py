"""A UNet decoder's features as a technique reads them (DragDiffusion's motion supervision and point
tracking): the output of one up level of the UNet, as diffusers' ``UNet2DConditionModel`` returns its
``up_blocks[k - 1]``'s output (after its upsampler), level 0 being the middle block's output. In the host's
UNet an up level is ``num_res_blocks + 1`` output blocks, the upsampler in its last; its output is what
enters the next level's first output block, where ``patches.on_output_blocks`` reads it. The final level's
output enters no output block (the UNet's ``out`` layers follow) and cannot be read there."""
from __future__ import annotations

from .patches import on_output_blocks


def decoder_entries(model) -> list[int]:
    """For each up level k that can be read (0: the middle block's output, k: the k-th up level's), the output
    block its output enters: SD1.5 ``[0, 3, 6, 9]`` (its 4 levels of 3 blocks; level 4 is the last), SDXL
    ``[0, 3, 6]``."""
    unet = model.model.diffusion_model
    per_level = [n + 1 for n in reversed(list(unet.num_res_blocks))]   # output levels, deepest first
    entries, at = [0], 0
    for count in per_level:
        at += count
        if at >= len(unet.output_blocks):
            break
        entries.append(at)
    return entries


class DecoderFeatures:
    """The features entering output block ``entry`` at the latest model call (``features``), kept by an
    output-block patch on the model (``install``); a plain reference, with its graph where the call took
    gradients."""

    def __init__(self, entry: int):
        self.entry, self.features = entry, None

    def install(self, model) -> None:
        store = self

        def keep(h, hsp, transformer_options):   # a closure: the model's clones share it
            if transformer_options.get("block") == ("output", store.entry):
                store.features = h
            return h, hsp

        on_output_blocks(model, keep)


def pixels_per_latent(model) -> int:
    """The model's latent cell in image pixels (8 for the SD family)."""
    return int(getattr(model.model.latent_format, "spacial_downscale_ratio", 8))
