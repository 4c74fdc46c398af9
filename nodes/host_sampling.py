"""Running the pack's pure step loops inside ComfyUI's own sampling machinery.

A loop such as ``inversion.ddim.ddim_invert`` sees the model as ``denoise(x, sigma)``. Run
through a ``CFGGuider`` and a ``KSAMPLER``, every UNet call goes through the same path as
the host's samplers: conditioning, CFG, model patches and wrappers (LoRA, attention patches,
ControlNet) all apply, and the call count equals a stock run of the same steps.
"""
from __future__ import annotations

from typing import Callable, Optional

import comfy.model_management
import comfy.model_sampling
import comfy.sample
import comfy.samplers
import comfy.utils
import torch
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
from comfy.model_patcher import ModelPatcher

# loop(denoise, x, sigmas, step_callback) -> final x
Loop = Callable[[Callable, torch.Tensor, torch.Tensor, Callable], torch.Tensor]



class NodeInputError(ValueError):
    """A node's input cannot work; the message names the node, the input and what would."""

    def __init__(self, node: str, message: str):
        super().__init__(f"{node}: {message}")


def check_model_family(model: ModelPatcher, node: str) -> None:
    """The pack works on Stable Diffusion UNets (SD1.x, SD2.x, SDXL and their fine-tunes)
    sampled in the variance-exploding space ``x = x0 + sigma * eps`` (eps, v or x0
    prediction). Flow-matching models and DiT/MMDiT architectures are refused by name."""
    base = model.model
    ms = model.get_model_object("model_sampling")
    unet = isinstance(getattr(base, "diffusion_model", None), UNetModel)
    if not unet or not isinstance(ms, comfy.model_sampling.EPS):
        raise NodeInputError(node, (
            f"input 'model' is {type(base.model_config).__name__} ({type(getattr(base, 'diffusion_model', None)).__name__}, "
            f"{type(ms).__name__} sampling); this node supports Stable Diffusion UNet checkpoints: SD1.x, SD2.x "
            f"(v-prediction too) and SDXL. Flow-matching and transformer models (SD3, Flux, ...) are not supported."))


def schedule(model: ModelPatcher, scheduler: str, steps: int) -> torch.Tensor:
    """The full descending sigma schedule, exactly as KSampler/KSamplerAdvanced compute it
    for the ``ddim`` and ``euler`` samplers."""
    return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps).float().cpu()


def run_loop(
    model: ModelPatcher,
    positive: list,
    negative: Optional[list],
    cfg: float,
    latent: torch.Tensor,
    sigmas: torch.Tensor,
    loop: Loop,
    seed: int = 0,
) -> torch.Tensor:
    """Run ``loop`` on ``latent`` (a LATENT tensor) with the host's guider; returns the final
    LATENT tensor. The loop works in sampler space; ``step_callback(i, total, x)`` updates
    the progress bar and raises if the user interrupted."""
    pbar = comfy.utils.ProgressBar(max(len(sigmas) - 1, 1))

    def step_callback(i: int, total: int, x: torch.Tensor) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        pbar.update_absolute(i + 1, total)

    def sampler_function(model_k, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}

        def denoise(x_in: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return model_k(x_in, sigma, **extra_args)

        return loop(denoise, x, sigmas, step_callback)

    guider = comfy.samplers.CFGGuider(model)
    conds = {"positive": positive}
    if negative is not None:
        conds["negative"] = negative
    guider.inner_set_conds(conds)
    guider.set_cfg(cfg)
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = torch.zeros_like(latent)
    out = guider.sample(noise, latent, comfy.samplers.KSAMPLER(sampler_function), sigmas,
                        disable_pbar=True, seed=seed)
    return out.to(comfy.model_management.intermediate_device())
