"""pix2pix-zero's cross-attention guidance inside the host (math in ``cross_guidance.py``):
a GUIDER for SamplerCustomAdvanced that draws the reconstruction and the edit side by side
(latent batch 2: row 0 source, row 1 target) and, at every step,

1. evaluates the source row (source prompt and negative) and keeps its cross-attention maps
   for this step only (an attn2 replace patch on every transformer block records them);
2. evaluates the target row (edited prompt and negative) with gradients, one input copy per
   branch, and differentiates the maps' distance to the source's with respect to each copy;
3. evaluates the target row again at the moved copies, combines the branches as the host does
   (pre-CFG functions, CFG, post-CFG functions) and returns the prediction for which the host's
   DDIM/Euler step from the target latent lands where the step from the moved latent lands.

Why a GUIDER rather than a MODEL patch: the method needs two extra UNet evaluations of the
target at latents other than the sampler's (a patch inside the host's own CFG call would add
a third), a backward pass run outside the host's inference mode on a model whose weights can
take gradients (``hostkit/gradients.py``), and the step taken from another latent. The
guider keeps the MODEL's own patches (Apply Inversion, Latent Blend, LoRA) and chains with
any SamplerCustomAdvanced set-up that uses the ddim or euler sampler.

Gradients run with inference mode off on clones of the sampler's tensors; the conditionings
and weights the host made under inference mode never need a gradient (the model's layers copy
their weights at each forward when they are inference tensors).
"""
from __future__ import annotations

import math

import torch

from ...hostkit.attention_driver import AttentionDriver
from ...hostkit.branch_inputs import BranchInputs, with_branch_inputs
from ...hostkit.errors import NodeInputError, check_conditioning
from ...hostkit.guidance_driver import BatchedGuider, cfg_combine, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.run_state import run_state
from ...hostkit.steps import step_at
from .cross_guidance import GuidanceMaps, MapState, at_input, moved_latent, step_from
from .edit_direction import edit_direction, sentences

NAME = "Cross-Attention Guidance"


def map_state(transformer_options: dict, maps: GuidanceMaps) -> MapState:
    """The run's ``MapState`` of the guider's map policy ``maps`` (its owner)."""
    return run_state(transformer_options, maps, maps.make_state, NAME)


class RecordMaps(AttentionDriver):
    """attn2 replace patch: the driver of one guider's map policy ``maps``: the host's own
    attention; while a pass of the guider records or guides, each branch's maps also go to the
    run's ``MapState``."""

    def __init__(self, maps: GuidanceMaps):
        super().__init__(maps, cross=True, node=NAME)


class CrossAttentionGuider(BatchedGuider):
    """pix2pix-zero's cross-attention guidance for a (source, target) latent pair; conds
    ``positive`` (source prompt), ``target`` (edited prompt), ``negative``."""

    NAME = NAME

    def __init__(self, model, maps: GuidanceMaps, amount: float, inverted_sigmas: torch.Tensor | None = None):
        super().__init__(model)
        self.maps = maps   # the map policy its RecordMaps patches drive: the owner of the run's MapState
        self.amount = amount
        self.inverted_sigmas = inverted_sigmas   # the sigmas the latent was inverted over, when it says

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        inverted = self.inverted_sigmas
        if inverted is not None and (len(sigmas) != len(inverted) or not torch.allclose(
                sigmas.float(), inverted.to(sigmas.device, torch.float32), rtol=1e-4, atol=1e-6)):
            raise NodeInputError(NAME, f"the sampler runs {len(sigmas) - 1} steps on sigmas from {float(sigmas[0]):.4g}, "
                                       f"but the latent was inverted over {len(inverted) - 1} steps from "
                                       f"{float(inverted[0]):.4g}; connect the inverter's SIGMAS (or its steps and "
                                       f"scheduler) so the edit retraces the inversion.")
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' steps differently "
                                       f"from DDIM; the guidance continues each step from the moved latent, which only "
                                       f"the ddim or euler sampler (KSamplerSelect) can do.")
        if torch.count_nonzero(noise) > 0:
            raise NodeInputError(NAME, "the sampler adds noise to the latent pair; connect DisableNoise (the "
                                       "reconstruction and the edit must start from the same inverted latent).")
        if latent_image.shape[0] != 2:
            raise NodeInputError(NAME, f"the latent being sampled has a batch of {latent_image.shape[0]}; sample the "
                                       f"LATENT pair from this node (row 0 source, row 1 target).")
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        if x.shape[0] != 2:
            raise NodeInputError(NAME, f"the sampler runs a batch of {x.shape[0]}; sample the LATENT pair from this "
                                       f"node (row 0 source, row 1 target).")
        options = model_options["transformer_options"]
        state = map_state(options, self.maps)
        step, _ = step_at(options["sample_sigmas"], timestep)
        sigma, sigma_next = timestep[:1], options["sample_sigmas"][step + 1].to(x)
        guided = not (math.isclose(self.cfg, 1.0) and not model_options.get("disable_cfg1_optimization", False))
        negative = self.conds.get("negative") if guided else None
        source, target = [self.conds["positive"], negative], [self.conds["target"], negative]
        model = self.inner_model

        state.begin("record")   # 1: the reconstruction, its maps kept for this step
        out_source = predict_conds(model, source, x[:1], sigma, model_options)
        x_t = x[1:2]
        try:   # 2: the edit's maps against them, one latent copy per branch
            with torch.inference_mode(False), torch.enable_grad():
                track = BranchInputs(track=True)
                state.begin("guide", 2 if guided else 1)
                predict_conds(model, target, x_t.clone(), sigma.clone(), with_branch_inputs(model_options, track))
                grads = track.gradients(state.loss)
        finally:
            state.end()
        moved = {b: moved_latent(x_t, g.to(x_t), sigma, self.amount) for b, g in grads.items()}
        # 3: the edit's predictions at the moved copies; the step continues from the unconditional one's
        out_target = predict_conds(model, target, x_t, sigma, with_branch_inputs(model_options, BranchInputs(moved)))
        start = moved[1] if guided else moved[0]
        cond_t = out_target[0] if start is moved[0] else at_input(start, moved[0], out_target[0])
        cond = torch.cat([out_source[0], cond_t])
        uncond = torch.cat([out_source[1], out_target[1]])
        inputs = torch.cat([x[:1], start])
        cond, uncond = self.pre_cfg([source[0], negative], [cond, uncond], inputs, timestep, model_options)[:2]
        denoised = cfg_combine(model, cond, uncond, self.cfg, inputs, timestep, model_options, source[0], negative)
        denoised = denoised.clone()
        denoised[1:] = step_from(x_t, start, denoised[1:], sigma, sigma_next)
        return denoised


# ----------------------------------------------------------------------------- the edit direction
# Sentences encoded with the host's CLIP, or embeddings from user CONDITIONINGs, averaged per side
# (``edit_direction.py``); the direction added to every entry of the source prompt's CONDITIONING (its
# cross-attention embedding, and its pooled output where every input has one: SDXL's).

DIRECTION = "Edit Direction"   # the node of the edit direction, for messages


def encoded(clip, text: str, name: str) -> list:
    """A CONDITIONING of every sentence of ``text`` (one per line), one entry per sentence."""
    lines = sentences(text)
    if not lines:
        raise NodeInputError(DIRECTION, f"input '{name}' has no sentences; write one sentence per line (the paper "
                                   f"averages many, e.g. 'a cat sitting on a sofa'), or connect '{name.replace('sentences', 'embeddings')}'.")
    out = []
    for line in lines:
        out += clip.encode_from_tokens_scheduled(clip.tokenize(line))
    return out


def side(conditioning, clip, text: str, name: str) -> list:
    """One side's CONDITIONING: the user's (``*_embeddings``) when connected, else the sentences
    of ``text`` encoded with ``clip``."""
    if conditioning is not None:
        check_conditioning(DIRECTION, name.replace("sentences", "embeddings"), conditioning)
        return conditioning
    if clip is None:
        raise NodeInputError(DIRECTION, f"input '{name}' needs the 'clip' input to be encoded; connect the model's CLIP, "
                                   f"or connect '{name.replace('sentences', 'embeddings')}' instead.")
    return encoded(clip, text, name)


def _stack(conditioning: list, key: str | None, what: str, shape: tuple) -> torch.Tensor | None:
    """All rows of a CONDITIONING's embeddings (``key`` None) or pooled outputs, ``[N, ...]``;
    None for pooled outputs some entry lacks. Refuses embeddings of another shape than the prompt's."""
    rows = []
    for emb, extra in conditioning:
        t = emb if key is None else extra.get(key)
        if t is None:
            return None
        if tuple(t.shape[1:]) != shape:
            if key is not None:
                return None
            raise NodeInputError(DIRECTION, f"{what} encodes to {tuple(t.shape[1:])} (tokens, width), the prompt "
                                       f"('conditioning') to {shape}; use sentences of at most 75 tokens (one 77-token "
                                       f"chunk, like the prompt) and the same model's CLIP for both.")
        rows.append(t.float().reshape(-1, *shape))
    return torch.cat(rows)


def add_direction(conditioning: list, source: list, target: list) -> list:
    """The prompt's CONDITIONING with the mean target minus mean source embedding added to each
    entry (and to its pooled output when every input has one of the same width)."""
    emb0, extra0 = conditioning[0]
    shape = tuple(emb0.shape[1:])
    direction = edit_direction(_stack(source, None, "a source sentence", shape), _stack(target, None, "a target sentence", shape))
    pooled = extra0.get("pooled_output")
    pooled_direction = None
    if pooled is not None:
        p_shape = tuple(pooled.shape[1:])
        src, tgt = _stack(source, "pooled_output", "", p_shape), _stack(target, "pooled_output", "", p_shape)
        if src is not None and tgt is not None:
            pooled_direction = edit_direction(src, tgt)
    out = []
    for emb, extra in conditioning:
        if tuple(emb.shape[1:]) != shape:
            raise NodeInputError(DIRECTION, f"input 'conditioning' has entries of different token lengths ({shape} and "
                                       f"{tuple(emb.shape[1:])}); connect one prompt's CONDITIONING.")
        extra = dict(extra)
        if pooled_direction is not None and extra.get("pooled_output") is not None:
            p = extra["pooled_output"]
            extra["pooled_output"] = p + pooled_direction.to(p)
        out.append([emb + direction.to(emb), extra])
    return out
