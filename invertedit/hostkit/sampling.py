"""Running the pack's pure step loops inside ComfyUI's own sampling machinery.

A loop such as ``inversion.ddim.ddim_invert`` sees the model as ``denoise(x, sigma)``. Run
through a ``CFGGuider`` and a ``KSAMPLER``, every UNet call goes through the same path as
the host's samplers: conditioning, CFG, model patches and wrappers (LoRA, attention patches,
ControlNet) all apply, and the call count equals a stock run of the same steps.
"""
from __future__ import annotations

from typing import Callable, Optional

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import node_helpers
import torch
from comfy.model_patcher import ModelPatcher

from .errors import NodeInputError, check_finite_tensor
from .family import FLOW_EDITABLE, ModelFamily, model_family
from .progress import Progress, check_interrupt

# loop(denoise, x, sigmas, step_callback) -> final x, with denoise a HostDenoiser


Loop = Callable[["HostDenoiser", torch.Tensor, torch.Tensor, Callable], torch.Tensor]


def check_model_family(model: ModelPatcher, node: str) -> ModelFamily:
    """The pack works on Stable Diffusion UNets (SD1.x, SD2.x, SDXL and their fine-tunes)
    sampled in the variance-exploding space ``x = x0 + sigma * eps`` (eps, v or x0
    prediction). Flow-matching models and DiT/MMDiT architectures are refused by name.
    Returns the model's family (``hostkit/family.py``)."""
    family = model_family(model)
    if not family.editable:
        raise NodeInputError(node, (
            f"input 'model' is {family.config_name} ({family.denoiser_name}, "
            f"{family.sampling_name} sampling); this node supports Stable Diffusion UNet checkpoints: SD1.x, SD2.x "
            f"(v-prediction too) and SDXL. For Flux.1, SD3 and Qwen-Image use the pack's flow nodes (InvertEdit/flow: "
            f"FlowEdit)."))
    return family


def with_guidance(conditioning: list, guidance: float) -> list:
    """``conditioning`` with Flux's distilled guidance set (what FluxGuidance writes)."""
    return node_helpers.conditioning_set_values(conditioning, {"guidance": guidance})


def check_plain_prompt(node: str, name: str, conditioning) -> None:
    """A flow node's prompt must be a plain text prompt: the reference images of Flux Kontext (ReferenceLatent) and
    Qwen-Image-Edit (TextEncodeQwenImageEdit) ask the model to redraw another picture, which no inversion or FlowEdit
    retraces."""
    for _, extra in conditioning or []:
        if extra.get("reference_latents") is not None:
            raise NodeInputError(node, f"input '{name}' carries reference images (ReferenceLatent or TextEncodeQwenImageEdit"
                                       f": Flux Kontext's or Qwen-Image-Edit's instruction editing), which this node does "
                                       f"not support; connect the plain text prompt (CLIP Text Encode; FluxGuidance for "
                                       f"Flux).")


def check_references(node: str, name: str, conditioning, model: ModelPatcher) -> list:
    """The reference latents an instruction editor's prompt carries (Flux.1 Kontext's ReferenceLatent,
    Qwen-Image-Edit's), checked: each a finite latent of ``model``'s channels. Returns them (empty: a plain
    prompt); every entry of the prompt must carry the same."""
    found = [extra.get("reference_latents") for _, extra in conditioning or []]
    first = found[0] if found else None
    if any((f is None) != (first is None) or (f is not None and len(f) != len(first)) for f in found):
        raise NodeInputError(node, f"input '{name}' holds prompts with and without reference images; give one prompt "
                                   f"(ReferenceLatent after CLIP Text Encode, or TextEncodeQwenImageEdit).")
    frames = model.get_model_object("latent_format").latent_dimensions == 3
    want = "[batch, channels, 1, height, width]" if frames else "[batch, channels, height, width]"
    for i, ref in enumerate(first or []):
        if not isinstance(ref, torch.Tensor) or ref.ndim not in (4, 5):
            raise NodeInputError(node, f"input '{name}': reference image {i} is not a latent; connect VAE Encode of the "
                                       f"image to ReferenceLatent.")
        if ref.ndim != (5 if frames else 4) or (frames and ref.shape[2] != 1):
            raise NodeInputError(node, f"input '{name}': reference image {i} is a latent {tuple(ref.shape)}; this model "
                                       f"({model_family(model).config_name}) reads one image's {want}: encode the "
                                       f"reference with this model's VAE (VAE Encode of one image), then "
                                       f"ReferenceLatent.")
        want = model.get_model_object("latent_format").latent_channels
        if ref.shape[1] != want:
            raise NodeInputError(node, f"input '{name}': reference image {i} has {ref.shape[1]} channels and this model "
                                       f"({model_family(model).config_name}) takes {want}: it was encoded with another "
                                       f"model's VAE; encode it with this model's (VAE Encode, then ReferenceLatent).")
        check_finite_tensor(node, f"input '{name}' reference image {i}", ref, "encode the image with this model's VAE.")
    return list(first or [])


def check_flow_family(model: ModelPatcher, node: str) -> ModelFamily:
    """The flow techniques work on rectified-flow transformers: Flux.1 (dev, schnell), SD3/3.5 and Qwen-Image,
    sampled in ``x = (1 - sigma) x0 + sigma n`` (the host's CONST sampling). Stable Diffusion UNets
    and other models (Flux Fill, other DiTs) are refused by name. Returns the model's family."""
    family = model_family(model)
    if family.config_name == "FluxInpaint":
        raise NodeInputError(node, "input 'model' is Flux Fill (an inpainting model that takes a mask and image as "
                                   "extra channels); this node edits with Flux.1 dev or schnell and SD3: load one.")
    if (not family.flow_editable and family.layout in FLOW_EDITABLE["layout"]
            and family.parameterisation in FLOW_EDITABLE["parameterisation"]):
        raise NodeInputError(node, (
            f"input 'model' is {family.config_name} ({family.denoiser_name}), a model this node was not tested on; it "
            f"edits with Flux.1 dev and schnell, SD3/SD3.5 and Qwen-Image, and Wan 2.1/2.2 text-to-video (the host's "
            f"{', '.join(FLOW_EDITABLE['config'])} configs). Load one of those."))
    if not family.flow_editable:
        hint = (" For Stable Diffusion checkpoints use the pack's inversion nodes (DDIM Invert, then an editor)."
                if family.editable else "")
        raise NodeInputError(node, (
            f"input 'model' is {family.config_name} ({family.denoiser_name}, {family.sampling_name} sampling); this "
            f"node edits with rectified-flow transformers: Flux.1 (dev, schnell), SD3/SD3.5 and Qwen-Image.{hint} It "
            f"edits clips with Wan 2.1/2.2 text-to-video too."))
    return family


def check_latent_channels(node: str, name: str, samples: torch.Tensor, model: ModelPatcher) -> None:
    """Refuse a latent of another model family (a 4-channel SD latent into Flux or SD3, whose latents have 16):
    it fails deep in the model otherwise ("mat1 and mat2 shapes cannot be multiplied"). An empty latent (all
    zeros, Empty Latent Image) is left to the host, which widens it to the model's channels."""
    want = model.get_model_object("latent_format").latent_channels
    if samples.ndim >= 4 and samples.shape[1] != want and bool(samples.any()):  # sampling-path-ok: once, before a run
        raise NodeInputError(node, f"input '{name}' has {samples.shape[1]} channels; this model "
                                   f"({model_family(model).config_name}) works on latents of {want}: it was encoded "
                                   f"with another model's VAE. Encode the image with the VAE of this model's checkpoint "
                                   f"(VAE Encode).")

def image_latent(samples: torch.Tensor, model: ModelPatcher) -> torch.Tensor:
    """``samples`` as the host samples an image's latent with ``model``: a model on latents with a frame axis
    (Qwen-Image's Wan VAE: ``[batch, channels, frames, height, width]``) takes a 4-dimensional one with one frame
    added, as the host adds it (``comfy.sample.fix_empty_latent_channels``); any other latent as it is."""
    if samples.ndim == 4 and model.get_model_object("latent_format").latent_dimensions == 3 \
            and not model_family(model).video:
        return samples.unsqueeze(2)
    return samples


def model_space(samples: torch.Tensor, model: ModelPatcher) -> torch.Tensor:
    """An image's LATENT ``samples`` as the model samples it: the frame axis where the model's latents have one
    (``image_latent``), scaled and shifted into the model's space (its latent format's ``process_in``), in float32."""
    return model.model.process_latent_in(image_latent(samples, model).float())


def check_image_latent_shape(node: str, name: str, samples: torch.Tensor, model: ModelPatcher) -> None:
    """Refuse a latent that is not one image's per row: ``[batch, channels, height, width]``, or for a model on
    latents with a frame axis (Qwen-Image) ``[batch, channels, 1, height, width]``; a video model's (Wan) must be
    a clip's, ``[batch, channels, frames, height, width]`` from its own VAE (``check_clip_latent_shape``)."""
    if model_family(model).video:
        check_clip_latent_shape(node, name, samples, model)
        return
    frames = model.get_model_object("latent_format").latent_dimensions == 3
    if samples.ndim == 4 or (frames and samples.ndim == 5 and samples.shape[2] == 1):
        return
    if frames and samples.ndim == 5:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}: {samples.shape[2]} frames. This "
                                   f"model's VAE encodes a batch of images as the frames of one clip; encode one image "
                                   f"(Image From Batch before VAE Encode), or edit each image in its own run.")
    want = "[batch, channels, 1, height, width]" if frames else "[batch, channels, height, width]"
    raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}; an image latent {want} is needed.")


def check_source_latent(node: str, samples: torch.Tensor, model: ModelPatcher, also: str = "") -> None:
    """What an editor that starts from the source image's latent (a GUIDER given it as the sampler's latent_image:
    FlowEdit, FlowAlign, UniEdit-Flow) refuses there: an empty latent (Empty Latent Image in its place), one with NaN
    (it edits to a black image), another model's channels, a latent that is not an image's per row (a clip's on a
    video model). ``also``: what else to connect, for the empty latent's message."""
    if torch.count_nonzero(samples) == 0:
        raise NodeInputError(node, f"the latent is empty (all zeros); {node} edits an image: connect VAE Encode of the "
                                   f"source image as the sampler's latent_image{also}.")
    check_finite_tensor(node, "the sampler's latent_image", samples,
                        "connect VAE Encode of the source image (a latent with NaN edits to a black image).")
    check_latent_channels(node, "latent_image", samples, model)
    # an image latent per row (a batch of frames on an image model), or a clip's on a video model (Wan)
    check_image_latent_shape(node, "latent_image", samples, model)


def check_clip_latent_shape(node: str, name: str, samples: torch.Tensor, model: ModelPatcher) -> None:
    """A video model (Wan 2.x) samples one clip per row, ``[batch, channels, frames, height, width]`` (the Wan VAE
    folds 4 frames into one latent frame: 1 + 4k frames give 1 + k): refuse an image latent of 4 dimensions (another
    model's VAE, or an image batch encoded frame by frame), naming what works."""
    if samples.ndim == 5:
        return
    family = model_family(model)
    raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}, an image latent; this model "
                               f"({family.config_name}, a video model) edits a clip's latent [batch, channels, frames, "
                               f"height, width]: encode the clip's frames (an IMAGE batch, e.g. Load Video then Get "
                               f"Video Components) with this model's VAE (VAE Encode).")


def repeat_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` repeated ``rows`` times on the batch axis, whatever its other axes."""
    return x.repeat(rows, *(1,) * (x.ndim - 1))


_NORM_GROUPS = 32   # the UNet's GroupNorm groups (openaimodel's normalization)


def check_latent_size(node: str, name: str, samples: torch.Tensor, model: ModelPatcher) -> None:
    """Refuse a latent too small for the UNet: each level's first block normalises the channels it
    is handed over 32 groups, and a group of one value cannot be normalised ("Expected more than 1
    value per channel"). Says the smallest latent, and image, that works. A latent of another family's channels is
    refused first (``check_latent_channels``)."""
    check_latent_channels(node, name, samples, model)
    config = model.model.model_config.unet_config
    channels, mult = config.get("model_channels"), config.get("channel_mult")
    if not channels or not mult:
        return

    def fits(h: int, w: int) -> bool:
        for level in range(len(mult)):
            per_group = channels * mult[max(level - 1, 0)] // _NORM_GROUPS
            if per_group * -(-h // 2 ** level) * -(-w // 2 ** level) <= 1:
                return False
        return True

    h, w = samples.shape[-2:]
    if not fits(h, w):
        side = next(s for s in range(1, 1 << 12) if fits(max(h, s), max(w, s)))
        raise NodeInputError(node, f"input '{name}' is {h}x{w} (an image of {8 * h}x{8 * w} px); this model needs a "
                                   f"latent of at least {side}x{side} ({8 * side}x{8 * side} px images). Use a larger "
                                   f"image (or upscale it before VAE Encode).")


def check_latents(node: str, name: str, latent, model: ModelPatcher, fix: str) -> torch.Tensor:
    """A LATENT batch of images to train on (the training nodes' images): its samples, checked."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise NodeInputError(node, f"input '{name}' is a {type(latent).__name__}, not a LATENT; {fix}")
    samples = latent["samples"]
    if samples.ndim != 4 or samples.shape[0] < 1:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}; {fix}")
    check_finite_tensor(node, f"input '{name}'", samples, fix)
    check_latent_size(node, name, samples, model)
    return samples


def seeded_noise(latent: torch.Tensor, seed: int) -> torch.Tensor:
    """The host's seeded noise for ``latent`` (what KSampler and Random Noise draw from ``seed``)."""
    return comfy.sample.prepare_noise(latent, seed)


def as_sampler(function):
    """A SAMPLER (SamplerCustomAdvanced's input) running ``function``, a k-diffusion sampler function
    ``(model, x, sigmas, extra_args, callback, disable) -> x``."""
    return comfy.samplers.KSAMPLER(function)


def schedule(model: ModelPatcher, scheduler: str, steps: int) -> torch.Tensor:
    """The full descending sigma schedule, exactly as KSampler/KSamplerAdvanced compute it
    for the ``ddim`` and ``euler`` samplers."""
    return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps).float().cpu()


class _ContextSwap:
    """APPLY_MODEL wrapper: every row's cross-attention context becomes ``context`` and, with
    ``pooled``, the conditioning vector ``y`` starts with it (SDXL's pooled text; the size
    conditioning after it kept)."""

    def __init__(self, context: torch.Tensor, pooled: Optional[torch.Tensor] = None):
        self.context, self.pooled = context, pooled

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        if c_crossattn is not None and c_crossattn.shape[1:] != self.context.shape[1:]:
            raise ValueError(f"the prompt's embedding is {tuple(c_crossattn.shape[1:])}, the optimised one "
                             f"{tuple(self.context.shape[1:])}: use a prompt of the same token length")
        context = self.context.to(device=x.device, dtype=c_crossattn.dtype if c_crossattn is not None else x.dtype)
        if self.pooled is not None:
            y = kwargs["y"]
            pooled = self.pooled.to(y).expand(y.shape[0], -1)
            kwargs["y"] = torch.cat([pooled, y[:, pooled.shape[-1]:]], dim=-1)
        return executor(x, t, c_concat, context.expand(x.shape[0], -1, -1), control, transformer_options, **kwargs)


class _RowSwap:
    """APPLY_MODEL wrapper: the rows from ``split`` on take the prompt tensors in ``swap``
    (``c_crossattn`` and, for SDXL, the pooled vector ``y``) in place of the call's own."""

    def __init__(self, split: int, swap: dict):
        self.split, self.swap = split, swap

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        rest = x.shape[0] - self.split
        context = self.swap["c_crossattn"].to(c_crossattn)
        c_crossattn = torch.cat([c_crossattn[:self.split], context.expand(rest, *context.shape[1:])])
        if "y" in self.swap:
            y = self.swap["y"].to(kwargs["y"])
            kwargs["y"] = torch.cat([kwargs["y"][:self.split], y.expand(rest, *y.shape[1:])])
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


_PROMPT_ONLY = {"cross_attn", "model_conds", "pooled_output", "uuid"}   # a plain prompt's conditioning keys
_PROMPT_TENSORS = ("c_crossattn", "y")


def _prompt_swap(positive: list, negative: Optional[list]) -> Optional[dict]:
    """The negative's prompt tensors, where it can share the positive's model call: one plain prompt
    each (no area, mask, ControlNet or hooks), the same kinds and shapes of model conditioning, and
    anything besides the prompt tensors equal. None otherwise."""
    if not negative or len(positive) != 1 or len(negative) != 1:
        return None
    p, n = positive[0], negative[0]
    if set(p) - _PROMPT_ONLY or set(n) - _PROMPT_ONLY or set(p["model_conds"]) != set(n["model_conds"]):
        return None
    swap = {}
    for key, cond in n["model_conds"].items():
        mine = p["model_conds"][key]
        if type(cond) is not type(mine) or not torch.is_tensor(cond.cond) or cond.cond.shape != mine.cond.shape:
            return None
        if key in _PROMPT_TENSORS:
            swap[key] = cond.cond
        elif not torch.equal(cond.cond, mine.cond):   # sampling-path-ok: once per run, on the prompts' tensors
            return None
    return swap if "c_crossattn" in swap else None


class HostDenoiser:
    """The host's model inside a sampling run, as the pure loops see it.

    Called as ``denoise(x, sigma)`` it is the guided prediction (CFG and every patch).
    ``part("positive" | "negative", x, sigma, context=None)`` is one side of it alone, through
    the host's ``calc_cond_batch`` (areas, ControlNet, SDXL's pooled conditioning all apply);
    with ``context`` the cross-attention embedding is replaced, differentiably (and with ``pooled``
    the pooled text at the start of SDXL's conditioning vector). Every call first
    honours the host's interrupt, so a loop of many evaluations a step (Fixed-Point, pix2pix-zero's
    regularised inversion, the optimisations) stops within one UNet evaluation."""

    def __init__(self, model_k, extra_args: dict):
        self.model_k = model_k
        self.extra_args = extra_args
        self._swapped: tuple = (None, None, None)   # (context, pooled, the options that swap them in): one clone per context
        self._pairs: dict = {}   # split -> the options that give the rows from it the negative's prompt (or None)

    def _options_with(self, context: torch.Tensor, pooled: Optional[torch.Tensor] = None) -> dict:
        """The run's model options with ``context`` (and ``pooled``) swapped in, cloned once per
        context tensor (an optimiser updates its embedding in place: one clone per timestep, not per
        inner step)."""
        if self._swapped[0] is not context or self._swapped[1] is not pooled:
            options = comfy.model_patcher.create_model_options_clone(self.extra_args.get("model_options", {}))
            comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL,
                                                         "invertedit_context", _ContextSwap(context, pooled), options,
                                                         is_model_options=True)
            self._swapped = (context, pooled, options)
        return self._swapped[2]

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        check_interrupt()
        return self.model_k(x, sigma, **self.extra_args)

    def part(self, which: str, x: torch.Tensor, sigma: torch.Tensor, context: Optional[torch.Tensor] = None,
             pooled: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_interrupt()
        guider = self.model_k.inner_model
        options = self.extra_args.get("model_options", {}) if context is None else self._options_with(context, pooled)
        sigma = sigma.reshape(-1).expand(x.shape[0]) if sigma.numel() == 1 else sigma
        return comfy.samplers.calc_cond_batch(guider.inner_model, [guider.conds[which]], x, sigma, options)[0]


    def pair(self, x: torch.Tensor, sigma: torch.Tensor, split: int) -> torch.Tensor:
        """Rows ``[:split]`` under the positive conditioning and the rest under the negative one: in
        one model call where the two are plain prompts of the same shapes (the rows from ``split``
        take the negative's cross-attention context and pooled vector), else ``part`` twice."""
        sigma = sigma.reshape(-1).expand(x.shape[0]) if sigma.numel() == 1 else sigma
        guider = self.model_k.inner_model
        if split not in self._pairs:
            swap = _prompt_swap(guider.conds["positive"], guider.conds.get("negative"))
            options = None
            if swap is not None:
                options = comfy.model_patcher.create_model_options_clone(self.extra_args.get("model_options", {}))
                comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL,
                                                             "invertedit_pair", _RowSwap(split, swap), options,
                                                             is_model_options=True)
            self._pairs[split] = options
        options = self._pairs[split]
        if options is None:
            return torch.cat([self.part("positive", x[:split], sigma[:split]),
                              self.part("negative", x[split:], sigma[split:])])
        check_interrupt()
        return comfy.samplers.calc_cond_batch(guider.inner_model, [guider.conds["positive"]], x, sigma, options)[0]


def run_loop(
    model: ModelPatcher,
    positive: list,
    negative: Optional[list],
    cfg: float,
    latent: torch.Tensor,
    sigmas: torch.Tensor,
    loop: Loop,
    seed: int = 0,
    from_latent: bool = False,
) -> torch.Tensor:
    """Run ``loop`` on ``latent`` (a LATENT tensor) with the host's guider; returns the final
    LATENT tensor. The loop works in sampler space; ``step_callback(i, total, x, preview=None)``
    (a ``progress.Progress``) raises if the user interrupted and updates the progress bar, with the
    host's preview picture of ``preview`` or of the prediction last given to ``step_callback.saw``
    when the host's previews are on. ``from_latent``: the loop starts at the latent in the model's
    space itself (a flow model's run would start at ``(1 - sigma_0)`` times it)."""
    step_callback = Progress(model, max(len(sigmas) - 1, 1))

    def sampler_function(model_k, x, sigmas, extra_args=None, callback=None, disable=None):
        start = model_k.latent_image if from_latent else x
        return loop(HostDenoiser(model_k, extra_args or {}), start, sigmas, step_callback)

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
    return to_output(out)


def to_output(tensor: torch.Tensor) -> torch.Tensor:
    """A node's tensor output on the host's intermediate device (the CPU), where the host's own
    nodes put theirs: a MASK or IMAGE left on the GPU meets CPU tensors in the next node."""
    return tensor.to(comfy.model_management.intermediate_device())
