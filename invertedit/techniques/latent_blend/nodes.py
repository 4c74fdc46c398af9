"""Latent Blend: on a source/target pair, the target follows the source outside a mask
(math in ``blend.py``)."""
from __future__ import annotations

import torch.nn.functional as F

from ...hostkit.errors import NodeInputError, check_finite, check_region_mask
from ...hostkit.patches import after_cfg
from ...hostkit.sampling import check_latent_size
from ...hostkit.schemas import io
from .blend import BlendSchedule
from .glue import LatentBlendPatch, latent_mask


class LatentBlend(io.ComfyNode):
    NAME = "Latent Blend"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditLatentBlend",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=("Local edits (Blended Latent Diffusion; Prompt-to-Prompt's local blend): on a source/target pair, "
                         "the target follows the source outside the mask at every blended step, so only the masked region "
                         "changes. With a hard mask and blending from the first step the source is kept bit for bit. The "
                         "mask can come from Attention Store (words' attention) or any MASK; the one used is returned."),
            inputs=[
                io.Model.Input("model", tooltip="The model sampling the pair (e.g. from Attention Inject)."),
                io.Latent.Input("latent", tooltip="The LATENT pair being sampled (its size sets the mask's)."),
                io.Mask.Input("mask", tooltip="Where the target may change (1) and where it keeps the source (0); any size."),
                io.Float.Input("start", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps before blending starts (Prompt-to-Prompt's local blend: 0.2)."),
                io.Float.Input("end", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction after which blending stops (Blended Latent Diffusion: 0.75, the last "
                                       "quarter unblended)."),
            ],
            outputs=[
                io.Model.Output(tooltip="A clone of the model with the blend."),
                io.Mask.Output(display_name="mask", tooltip="The mask used, at latent resolution shown at image size."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, mask, start, end) -> io.NodeOutput:
        check_finite(LatentBlend.NAME, start=start, end=end)
        samples = latent["samples"]
        if samples.shape[0] != 2:
            raise NodeInputError(LatentBlend.NAME, f"input 'latent' has a batch of {samples.shape[0]}; connect the LATENT pair "
                                       f"(row 0 source, row 1 target) from a pair editor.")
        if start >= end:
            raise NodeInputError(LatentBlend.NAME, f"start ({start}) must be before end ({end}).")
        check_latent_size(LatentBlend.NAME, "latent", samples, model)
        used = mask.reshape(-1, *mask.shape[-2:])[:1]   # the first of a batch, as latent_mask takes it
        check_region_mask(LatentBlend.NAME, "mask", used, "the target would follow the source everywhere and come out "
                                                          "as the source")
        m_latent = latent_mask(mask, tuple(samples.shape[-2:]))
        if not bool(m_latent.gt(0).any()):   # checked once, before the run
            raise NodeInputError(LatentBlend.NAME, f"input 'mask' covers less than one cell of the {samples.shape[-2]}x"
                                                   f"{samples.shape[-1]} latent, so at latent resolution it is empty and "
                                                   f"the target would come out as the source; give a larger region.")
        m = model.clone()
        after_cfg(m, LatentBlendPatch(m_latent, BlendSchedule(start, end)))
        shown = F.interpolate(m_latent, scale_factor=8, mode="nearest")[:, 0]
        return io.NodeOutput(m, shown)


NODES = [LatentBlend]
