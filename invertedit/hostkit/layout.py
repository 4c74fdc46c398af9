"""The host UNet's layout as the pack needs it: which blocks hold transformers, at which
downsampling factor. Read once with the model's family (``hostkit/family.py``, found from the
model, so SD1.x, SD2.x and SDXL layouts all work); these hand it on."""
from __future__ import annotations

from comfy.ldm.modules.attention import SpatialTransformer

from .family import model_family


def transformer_blocks(model) -> list[tuple[str, int]]:
    """The (block, number) keys of the UNet blocks holding a SpatialTransformer, as the host
    names them in ``transformer_options["block"]``."""
    return list(model_family(model).transformer_blocks)


def attention_levels(model) -> dict[tuple[str, int], int]:
    """Each input/output block holding a SpatialTransformer, with its downsampling factor."""
    return dict(model_family(model).attention_levels)


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


def decoder_blocks(model) -> tuple[int, int]:
    """The UNet's output blocks per resolution level and its output blocks in all."""
    unet = model.model.diffusion_model
    return unet.num_res_blocks[-1] + 1, len(unet.output_blocks)


def self_attention_layers(model) -> dict[tuple[str, int, int], int]:
    """Each (block, number, depth) of the UNet's self-attention layers -> its index in execution
    order (input blocks, middle, output blocks): SD1.5 has 16, SDXL 70."""
    unet = model.model.diffusion_model
    order = [("input", i, b) for i, b in enumerate(unet.input_blocks)] + [("middle", 0, unet.middle_block)] + \
            [("output", i, b) for i, b in enumerate(unet.output_blocks)]
    layers: dict[tuple[str, int, int], int] = {}
    for name, number, block in order:
        for m in block:
            if isinstance(m, SpatialTransformer):
                for depth in range(len(m.transformer_blocks)):
                    layers[(name, number, depth)] = len(layers)
    return layers
