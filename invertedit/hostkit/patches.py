"""The host's patch points, as the pack's verbs: what a technique's glue puts on a cloned MODEL (its
wrappers around every sampling run and every model call, a post-CFG function, an output-block patch,
an attention layer's or a DiT block's replacement). The glue never calls the host's patcher itself,
so the host surface the pack relies on is listed here (and in the drivers that install policies)."""
from __future__ import annotations

from contextlib import contextmanager

import torch

import comfy.patcher_extension
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
from comfy.model_patcher import ModelPatcher

from .steps import CLOCK_KEY, stamp_clock


def _keep_clock(model: ModelPatcher) -> None:
    """The call's time in its options for the patches inside the denoiser (``steps.CLOCK_KEY``), once a model."""
    if not model.get_wrappers(comfy.patcher_extension.WrappersMP.APPLY_MODEL, CLOCK_KEY):
        wrap_model_calls(model, CLOCK_KEY, stamp_clock)


def wrap_runs(model: ModelPatcher, key: str, wrapper) -> None:
    """``wrapper(executor, noise, latent, sampler, sigmas, ...)`` around every sampling run of
    ``model`` (the host's OUTER_SAMPLE wrapper; ``executor.class_obj`` is the run's guider)."""
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, key, wrapper)


def wrap_model_calls(model: ModelPatcher, key: str, wrapper) -> None:
    """``wrapper(executor, x, t, c_concat, c_crossattn, control, transformer_options, ...)`` around
    every batched call of ``model``'s denoiser (the host's APPLY_MODEL wrapper)."""
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, key, wrapper)


def after_cfg(model: ModelPatcher, function) -> None:
    """``function(args) -> denoised`` after classifier-free guidance at every step of ``model``'s runs
    (the host's ``sampler_post_cfg_function``: ``args`` holds ``denoised``, ``input``, ``sigma``,
    ``model_options``, ...)."""
    model.set_model_sampler_post_cfg_function(function)


def on_output_blocks(model: ModelPatcher, function) -> None:
    """``function(h, hsp, transformer_options) -> (h, hsp)`` entering each of the UNet's output blocks
    (the host's ``output_block_patch``)."""
    _keep_clock(model)
    model.set_model_output_block_patch(function)


def before_self_attention(model: ModelPatcher, function) -> None:
    """``function(n, context, value, extra_options) -> (n, context, value)`` on the input of every
    self-attention layer of the UNet, after its norm and before the layer (the host's ``attn1_patch``):
    where a patch reads the tokens' features themselves (TokenFlow's nearest-neighbour field)."""
    _keep_clock(model)
    model.set_model_attn1_patch(function)


def replace_attention(model: ModelPatcher, function, layer: str, block: str, number: int) -> None:
    """``function(q, k, v, extra_options) -> out`` in place of the ``layer`` ("attn1": self-attention,
    "attn2": cross-attention) of the UNet's transformer ``(block, number)`` (the host's replace patch)."""
    setter = {"attn1": model.set_model_attn1_replace, "attn2": model.set_model_attn2_replace}[layer]
    _keep_clock(model)
    setter(function, block, number)


def replace_dit_block(model: ModelPatcher, function, block: tuple[str, int]) -> None:
    """``function(args, extra) -> outputs`` in place of the DiT's ``block`` (("double_block", i),
    ("single_block", i); the host's ``patches_replace["dit"]``: ``extra["original_block"]`` runs it)."""
    _keep_clock(model)
    model.set_model_patch_replace(function, "dit", block[0], block[1])


@contextmanager
def on_resblock_residual(base_model, block: tuple[str, int], function):
    """Within the context, ``function(h) -> h`` on the residual branch of the first ResBlock of the
    UNet's ``block`` (("output", 4)): its output after the last convolution, before the skip
    connection is added (a forward hook on the ResBlock's ``out_layers``, removed on leaving). Where
    a patch replaces a ResBlock's residual features alone, as Plug-and-Play's and TokenFlow's
    authors do (``register_conv_injection``), which no patch point of the host reaches.
    ``base_model``: the model an APPLY_MODEL wrapper runs (its ``executor.class_obj``); the hook
    lives for the calls made inside the context only."""
    unet = base_model.diffusion_model
    kind, number = block
    modules = unet.middle_block if kind == "middle" else getattr(unet, f"{kind}_blocks")[number]
    res = next(m for m in modules if isinstance(m, ResBlock))
    if res.use_scale_shift_norm:
        raise NotImplementedError("a ResBlock with scale-shift norm runs its out_layers in parts")
    handle = res.out_layers.register_forward_hook(lambda module, args, out: function(out))
    try:
        yield
    finally:
        handle.remove()


def take_rows(obj, index: slice, batch: int):
    """``obj`` (tensors, lists, tuples, dicts of them) with the rows ``index`` of every tensor
    whose first dimension is the batch; anything else unchanged. A slice, so each is a view: no
    index tensor, no gather kernel, and it holds for a tensor on any device."""
    if isinstance(obj, torch.Tensor):
        return obj[index] if obj.ndim and obj.shape[0] == batch else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(take_rows(o, index, batch) for o in obj)
    if isinstance(obj, dict):
        return {k: take_rows(v, index, batch) for k, v in obj.items()}
    return obj


def select_rows(value, index: torch.Tensor, rows: int):
    """``value``'s rows ``index`` (a gather) where it is a per-row input of a model call of ``rows`` rows (the latent,
    the timesteps, the context), else ``value`` itself: how a wrapper runs the model on other rows than the sampler's."""
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == rows:
        return value.index_select(0, index.to(value.device))
    return value
