"""Attentive Eraser: object removal on a DDIM inversion (AAS in ``aas.py``, SARG and the kept background in
``sarg.py``, the run's checks in ``glue.py``).

How to wire it (the toy workflow "Toy - Attentive Eraser remove" does): VAE Encode the image; DDIM Invert it
(cfg 1; the authors invert with an empty prompt); Attentive Eraser with the same MODEL, the prompt of both
branches (CLIPTextEncode, the authors': empty), the INVERSION and the MASK of the object to remove; its GUIDER
into the stock SamplerCustomAdvanced with DisableNoise, KSamplerSelect 'ddim', DDIM Invert's SIGMAS and LATENT;
VAE Decode. One batched UNet call a step runs both branches (2 rows).

On the toy world 2 model (4 self-attention layers, 2 in its decoder) give start_layer 0: on the decoder's two alone
(the code's rule, -1) the object stays; see ``workflows.py`` (``TOY_START_LAYER``) for the toy template's settings.
"""
from __future__ import annotations

import logging

import torch.nn.functional as F

from ...hostkit.attention_driver import install_policy
from ...hostkit.errors import NodeInputError, check_conditioning, check_finite, check_inversion, check_region_mask
from ...hostkit.layout import attention_levels, transformer_blocks
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DDIM
from . import ROW
from .aas import AasSchedule, AttentionActivationSuppression, pooled, removal_mask
from .glue import NAME, EraserGuider, layer_range
from .sarg import SargPolicy

VAE_FACTOR = 8   # the SD family's VAE: a latent cell is 8x8 pixels
AUTO = -1        # end_step, start_layer, end_layer: as the code on this model (every step; the decoder's layers)

S = ROW.settings


def _setting(name: str):
    return S[f"InvertEditAttentiveEraser.{name}"]


class AttentiveEraser(io.ComfyNode):
    NAME = NAME

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditAttentiveEraser",
            display_name=cls.NAME,
            category="InvertEdit/spatial",
            description=(
                "Object removal (Attentive Eraser, Sun et al., AAAI 2025): on a DDIM inversion, a removal branch whose "
                "self-attention ignores the object's tokens (AAS) is pushed away from the plain branch (SARG), while "
                "outside the mask the image follows the inversion, so the region is redrawn from the background. A "
                "GUIDER for SamplerCustomAdvanced (DisableNoise, KSamplerSelect ddim, DDIM Invert's SIGMAS and LATENT); "
                "both branches run in one batched UNet call a step."),
            inputs=[
                io.Model.Input("model", tooltip="The model the inversion was made with (SD1.5, SD2.1, SDXL)."),
                io.Conditioning.Input("conditioning", tooltip="The prompt of both branches (CLIPTextEncode). The "
                                                              "authors' code: an empty prompt, guidance 1."),
                InversionSocket.Input("inversion", tooltip="From DDIM Invert (cfg 1; the authors invert with an empty "
                                                           "prompt, 50 steps)."),
                io.Mask.Input("mask", tooltip="The object to remove (white), at the image's size (resized if not). "
                                              "Neither empty nor the whole image: the region is filled from the rest."),
                io.Float.Input("removal_scale", default=_setting("removal_scale"), min=0.0, max=50.0, step=0.1,
                               round=0.01, tooltip="SARG's scale: eps_plain + scale (eps_removal - eps_plain) (code: "
                                                   "rm_guidance_scale 9, SD and SDXL scripts)."),
                io.Int.Input("ss_steps", default=_setting("ss_steps"), min=-1, max=1000,
                             tooltip="The object's queries attend with scaled logits while step <= ss_steps (code: 9, "
                                     "i.e. the first 10 steps; -1: never)."),
                io.Float.Input("ss_scale", default=_setting("ss_scale"), min=0.0, max=10.0, step=0.05, round=0.01,
                               tooltip="The scale of the object's queries' logits on those steps (code: 0.3; 1: "
                                       "none)."),
                io.Int.Input("start_step", default=_setting("start_step"), min=0, max=1000,
                             tooltip="First step of AAS (code: 0)."),
                io.Int.Input("end_step", default=AUTO, min=-1, max=1000,
                             tooltip="AAS acts on the steps before this one (-1: to the end; code: int(strength x "
                                     "steps), every step on its inversion path)."),
                io.Int.Input("start_layer", default=AUTO, min=-1, max=200,
                             tooltip="First self-attention layer of AAS, in execution order (-1: the decoder's first, "
                                     "the code's choice: 7 of SD's 16, 34 of SDXL's 70)."),
                io.Int.Input("end_layer", default=AUTO, min=-1, max=200,
                             tooltip="AAS acts on the layers before this one (-1: through the last; code: 16 on SD, "
                                     "70 on SDXL)."),
                io.Int.Input("mask_blur", default=_setting("mask_blur"), min=0, max=255,
                             tooltip="Gaussian blur (taps, odd; 0: none) before the 0.1 threshold, which dilates the "
                                     "mask (code: 7 at 512 px in DIP.py, SD; 77 at 1024 px in main.py, SDXL)."),
            ],
            outputs=[
                io.Guider.Output(tooltip="For SamplerCustomAdvanced, with DDIM Invert's SIGMAS and LATENT."),
                io.Mask.Output(display_name="mask", tooltip="The region redrawn: the mask after the blur and "
                                                            "threshold, at latent cells, shown at the image's size."),
            ],
        )

    @classmethod
    def execute(cls, model, conditioning, inversion, mask, removal_scale, ss_steps, ss_scale, start_step, end_step,
                start_layer, end_layer, mask_blur) -> io.NodeOutput:
        check_model_family(model, NAME)
        inversion = check_inversion(NAME, inversion, model=model, methods=(DDIM,))
        check_conditioning(NAME, "conditioning", conditioning, model)
        check_finite(NAME, removal_scale=removal_scale, ss_scale=ss_scale)
        if mask.ndim == 3 and mask.shape[0] != 1:
            raise NodeInputError(NAME, f"input 'mask' is a batch of {mask.shape[0]} masks; connect one.")
        check_region_mask(NAME, "mask", mask, "there is nothing to remove")
        if mask_blur > 1 and mask_blur % 2 == 0:
            raise NodeInputError(NAME, f"input 'mask_blur' is {mask_blur}; give an odd number of taps (code: 7), or 0.")
        latent = inversion.latent
        if latent.shape[0] != 1:
            raise NodeInputError(NAME, f"input 'inversion' holds {latent.shape[0]} images; invert one image.")
        h, w = latent.shape[-2:]
        steps = inversion.trajectory.shape[0] - 1
        end = steps if end_step < 0 else end_step
        if start_step >= min(end, steps):
            raise NodeInputError(NAME, f"start_step ({start_step}) is not before end_step ({end}) and the run's "
                                       f"{steps} steps; AAS would never act. Give a start_step below {min(end, steps)} "
                                       f"(code: 0).")
        layers, first, last = layer_range(model, start_layer, end_layer)
        region = removal_mask(mask, (VAE_FACTOR * h, VAE_FACTOR * w), mask_blur)   # once, at node time, where the mask is
        inside = pooled(region, (h, w))
        if bool(inside.all()):
            raise NodeInputError(NAME, "input 'mask' covers the whole image (after the code's blur and threshold, "
                                       "every latent cell), so nothing would remain to fill the region from; mask only "
                                       "the object to remove.")
        for factor in sorted(set(attention_levels(model).values())):
            hw = (-(-h // factor), -(-w // factor))
            if bool(pooled(region, hw).all()):
                logging.warning("%s: at the %dx%d attention grid the mask covers every token; there the removal "
                                "branch attends to all of them equally (the authors' code does the same).", NAME, *hw)
        m = model.clone()
        schedule = AasSchedule(start_step, end, first, last, ss_steps, ss_scale)
        install_policy(m, AttentionActivationSuppression(schedule, layers, region), transformer_blocks(m), NAME,
                       ("attn1",))
        policy = SargPolicy(removal_scale, inside, inversion.trajectory)
        shown = F.interpolate(inside, scale_factor=VAE_FACTOR, mode="nearest")[:, 0]
        return io.NodeOutput(EraserGuider(m, policy, conditioning, inversion), shown)


NODES = [AttentiveEraser]
