"""MasaCtrl: mutual self-attention on a source/target pair (math in ``mutual.py``, the run's check in
``glue.py``)."""
from __future__ import annotations

from functools import partial

from ...hostkit.attention_driver import install_policy
from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_region_mask
from ...hostkit.keys import PAIR_RUN_KEY
from ...hostkit.layout import self_attention_layers
from ...hostkit.pair import PairRun, encode_prompt, join_pair, prepare_pair_model, warn_same_prompts
from ...hostkit.patches import wrap_runs
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io, pair_inputs, pair_outputs
from . import ROW
from .glue import idle_reason
from .mutual import MutualSchedule, MutualSelfAttention


class MasaCtrl(io.ComfyNode):
    NAME = "MasaCtrl"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditMasaCtrl",
            display_name="Mutual Self-Attention (MasaCtrl)",
            category="InvertEdit/attention",
            description=("MasaCtrl (Cao et al.): from a start step and a start layer, the target's self-attention reads "
                         "the source's keys and values, so the edit (e.g. a pose or an action) keeps the source's "
                         "content. Outputs the patched MODEL, the source/target CONDITIONING pair and the LATENT pair "
                         "for one sampler run; combine with an inversion."),
            inputs=[
                *pair_inputs(source_default='a red circle on a blue background', source_tooltip='The prompt the image was inverted with.',
                             target_default='a red square on a blue background',
                             target_tooltip='The edited prompt (any length: prompts of different token lengths are '
                                            'repeated to a common one, as the host batches them).'),
                io.Int.Input("start_step", default=ROW.settings["InvertEditMasaCtrl.start_step"], min=0, max=1000,
                             tooltip="First sampling step of mutual self-attention (paper: 4 of 50); below the run's "
                                     "step count, or MasaCtrl never acts (the sampler refuses such a run)."),
                io.Int.Input("start_layer", default=ROW.settings["InvertEditMasaCtrl.start_layer"], min=0, max=200,
                             tooltip="First self-attention layer, counted in execution order (paper: 10 of SD1.5's 16; "
                                     "SDXL has 70)."),
                io.Mask.Input("source_mask", optional=True,
                              tooltip="Optional: the object in the source (e.g. Attention Store's mask of its word). "
                                      "With it, the paper's mask-guided version: the target's object attends only to "
                                      "the source's object, its background only to the source's background."),
                io.Mask.Input("target_mask", optional=True,
                              tooltip="Optional: where the object is in the target (e.g. Attention Store's mask of the "
                                      "target word on the same inversion); default: the source mask."),
            ],
            outputs=pair_outputs('self-attention patches'),
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, start_step, start_layer, source_mask=None,
                target_mask=None) -> io.NodeOutput:
        check_model_family(model, MasaCtrl.NAME)
        check_at_least(MasaCtrl.NAME, 0, start_step=start_step, start_layer=start_layer)
        layers = self_attention_layers(model)
        if start_layer >= len(layers):
            raise NodeInputError(MasaCtrl.NAME, f"start_layer is {start_layer} but this UNet has {len(layers)} self-attention "
                                       f"layers (0 to {len(layers) - 1}).")
        if source_mask is None and target_mask is not None:
            raise NodeInputError(MasaCtrl.NAME, "input 'target_mask' is connected without 'source_mask'; connect the source's "
                                       "object mask too (the target's defaults to it).")
        masks = None
        if source_mask is not None:
            target_mask = source_mask if target_mask is None else target_mask
            for name, mask in (("source_mask", source_mask), ("target_mask", target_mask)):
                if mask.ndim == 3 and mask.shape[0] != 1:
                    raise NodeInputError(MasaCtrl.NAME, f"input '{name}' is a batch of {mask.shape[0]} masks; connect one.")
                check_region_mask(MasaCtrl.NAME, name, mask, "the object's side of the mutual attention would have no "
                                                             "tokens and the mask would guide nothing")
            masks = (source_mask.cpu(), target_mask.cpu())
        m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1",), MasaCtrl.NAME)
        warn_same_prompts(MasaCtrl.NAME, source_prompt, target_prompt)
        install_policy(m, MutualSelfAttention(MutualSchedule(start_step, start_layer), layers, masks), blocks,
                       MasaCtrl.NAME, ("attn1",))
        source = encode_prompt(clip, source_prompt)
        check_conditioning(MasaCtrl.NAME, "clip", source, model)
        wrap_runs(m, PAIR_RUN_KEY, PairRun(source, MasaCtrl.NAME, idle=partial(idle_reason, start_step)))
        frames = pair_latent["samples"].shape[0] // 2   # a clip's pair in blocks (F = 1: one image)
        return io.NodeOutput(m, join_pair(source, encode_prompt(clip, target_prompt), frames), pair_latent)


NODES = [MasaCtrl]
