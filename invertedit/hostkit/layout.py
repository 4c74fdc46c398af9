"""The host UNet's layout as the pack needs it: which blocks hold transformers, at which
downsampling factor (found from the model, so SD1.x, SD2.x and SDXL layouts all work)."""
from __future__ import annotations

from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, Upsample


def transformer_blocks(model) -> list[tuple[str, int]]:
    """The (block, number) keys of the UNet blocks holding a SpatialTransformer, as the host
    names them in ``transformer_options["block"]``."""
    unet = model.model.diffusion_model
    keys = []
    for name, blocks in (("input", unet.input_blocks), ("output", unet.output_blocks)):
        for i, block in enumerate(blocks):
            if any(isinstance(m, SpatialTransformer) for m in block):
                keys.append((name, i))
    if any(isinstance(m, SpatialTransformer) for m in unet.middle_block):
        keys.append(("middle", 0))
    return keys


def attention_levels(model) -> dict[tuple[str, int], int]:
    """Each input/output block holding a SpatialTransformer, with its downsampling factor."""
    unet = model.model.diffusion_model
    levels, factor = {}, 1
    for i, block in enumerate(unet.input_blocks):
        if any(isinstance(m, Downsample) for m in block):
            factor *= 2
        if any(isinstance(m, SpatialTransformer) for m in block):
            levels[("input", i)] = factor
    for i, block in enumerate(unet.output_blocks):
        if any(isinstance(m, SpatialTransformer) for m in block):
            levels[("output", i)] = factor
        if any(isinstance(m, Upsample) for m in block):
            factor //= 2
    return levels


def mask_factor(levels: dict[tuple[str, int], int]) -> int:
    """The maps' downsampling factor: 4 (the reference's latent/4) when the model attends there,
    else its coarsest attention level."""
    factors = set(levels.values())
    return 4 if 4 in factors else max(factors)


def map_blocks(model) -> frozenset:
    """The blocks whose cross-attention maps Prompt-to-Prompt's masks and word maps read: those
    at a quarter of the latent's resolution (the reference's ``down_cross[2:4] + up_cross[:3]``,
    and ``aggregate_attention(res=16, from_where=("up", "down"))`` at SD1.5 512 px; never the
    middle block), or the coarsest attention level of a model without one."""
    levels = attention_levels(model)
    factor = mask_factor(levels)
    return frozenset(key for key, f in levels.items() if f == factor)
