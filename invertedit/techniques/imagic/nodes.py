"""Imagic Optimize Embedding / Imagic Fine-Tune / Imagic Interpolate (Kawar et al., "Imagic:
Text-Based Real Image Editing with Diffusion Models", CVPR 2023).

Imagic edits one image with a target text: optimise the target text's embedding until the
frozen model reconstructs the image, fine-tune the model on that embedding (here: a LoRA, the
pack's documented deviation from the paper's full fine-tune), then sample from noise with the
stock KSampler on the fine-tuned model and an interpolation of the two embeddings. The math is
in ``losses.py``, the host glue in ``glue.py``.
"""
from __future__ import annotations

import torch
from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_at_least, check_finite
from ...hostkit.quantised import check_trainable
from . import ROW
from .glue import (STAMP, check_inputs, check_stamp, conditioning_embedding, fine_tune_lora,
                    optimize_embedding, same_source, stamped)
from .losses import interpolate

_COST = "Each step is one UNet forward and one backward pass."


def _loss_map(losses: list[float]) -> dict:
    """The host's LOSS_MAP (Train LoRA's output), for the stock Plot Loss Graph node."""
    return {"loss": list(losses)}


class ImagicOptimizeEmbedding(io.ComfyNode):
    NAME = "Imagic Optimize Embedding"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditImagicOptimizeEmbedding",
            display_name=cls.NAME,
            category="InvertEdit/imagic",
            description=("Imagic, stage 1 (Kawar et al.): starting from the target prompt's embedding, optimises the "
                         "embedding (the model frozen) so that the model reconstructs the image: the diffusion loss at "
                         "random timesteps and noises, Adam. Feed 'optimized' to Imagic Fine-Tune, then both outputs to "
                         "Imagic Interpolate. " + _COST),
            inputs=[
                io.Model.Input("model", tooltip="The model to edit with (kept frozen here)."),
                io.Latent.Input("latent", tooltip="The image to edit, from VAE Encode (one image)."),
                io.Conditioning.Input("target", tooltip="The target text (the edit you want), from CLIP Text Encode: "
                                                        "the embedding the optimisation starts from."),
                io.Int.Input("steps", default=ROW.settings["InvertEditImagicOptimizeEmbedding.steps"], min=0, max=100000,
                             tooltip="Adam steps (reference code: 500; paper, on Imagen: 100). 0 returns the target's "
                                     "embedding unchanged."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditImagicOptimizeEmbedding.learning_rate"], min=0.0, max=0.1, step=0.0001, round=0.00001,
                               tooltip="Adam learning rate (paper and reference code: 0.001)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the noises and timesteps drawn at each step."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="optimized",
                                       tooltip="The optimised embedding e_opt (reconstructs the image)."),
                io.Conditioning.Output(display_name="target",
                                       tooltip="The target embedding e_tgt, passed through for Imagic Interpolate."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, target, steps, learning_rate, seed) -> io.NodeOutput:
        check_inputs(cls.NAME, model, latent["samples"], target, "target", steps, learning_rate)
        optimized, losses = optimize_embedding(model, latent["samples"], target, steps, learning_rate, seed)
        return io.NodeOutput(optimized, stamped(target, optimized[0][1][STAMP]), _loss_map(losses))


class ImagicFineTune(io.ComfyNode):
    NAME = "Imagic Fine-Tune"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditImagicFineTune",
            display_name=cls.NAME,
            category="InvertEdit/imagic",
            description=("Imagic, stage 2 (Kawar et al.): fine-tunes the model so that the optimised embedding "
                         "reconstructs the image, as a LoRA on every linear and convolution layer of the UNet (the "
                         "paper fine-tunes all weights). Returns the MODEL with the LoRA patched in (stock samplers, "
                         "other LoRAs and ControlNets work on it) and the LoRA itself for Save LoRA Weights. " + _COST),
            inputs=[
                io.Model.Input("model", tooltip="The model the embedding was optimised with."),
                io.Latent.Input("latent", tooltip="The same image latent as Imagic Optimize Embedding's."),
                io.Conditioning.Input("optimized", tooltip="The 'optimized' output of Imagic Optimize Embedding."),
                io.Int.Input("steps", default=ROW.settings["InvertEditImagicFineTune.steps"], min=0, max=100000,
                             tooltip="Adam steps (reference code: 1000; paper: 1500). 0 returns the model unchanged "
                                     "(the LoRA at its start is zero)."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditImagicFineTune.learning_rate"], min=0.0, max=0.01, step=0.00001, round=0.000001,
                               tooltip="Adam learning rate of the LoRA (0.0005, the host's Train LoRA default, with its "
                                       "alpha 1: scale 1/rank). The paper's 5e-7 (reference code: 2e-6) is for the full "
                                       "weights and far too small for a LoRA."),
                io.Int.Input("rank", default=ROW.settings["InvertEditImagicFineTune.rank"], min=1, max=256,
                             tooltip="LoRA rank (8; higher is closer to the paper's full fine-tune, bigger and slower)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the LoRA's initialisation and of the noises and timesteps of each step."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The input model with the fine-tuned LoRA."),
                io.LoraModel.Output(display_name="lora",
                                    tooltip="The LoRA in the host's format: Save LoRA Weights writes it, LoraLoader "
                                            "and Load LoRA Model apply it."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, optimized, steps, learning_rate, rank, seed) -> io.NodeOutput:
        check_inputs(cls.NAME, model, latent["samples"], optimized, "optimized", steps, learning_rate)
        check_at_least(cls.NAME, 1, rank=rank)
        check_trainable(cls.NAME, model)
        check_stamp(cls.NAME, optimized, "optimized", model, latent["samples"])
        patched, lora, losses = fine_tune_lora(model, latent["samples"], optimized, steps, learning_rate, rank, seed)
        return io.NodeOutput(patched, lora, _loss_map(losses))


class ImagicInterpolate(io.ComfyNode):
    NAME = "Imagic Interpolate"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditImagicInterpolate",
            display_name=cls.NAME,
            category="InvertEdit/imagic",
            description=("Imagic, stage 3 (Kawar et al.): the conditioning alpha * target + (1 - alpha) * optimized "
                         "(the paper's eta). Sample it from noise with the stock KSampler on Imagic Fine-Tune's model: "
                         "alpha 0 reconstructs the image, higher alpha follows the target text more."),
            inputs=[
                io.Conditioning.Input("target", tooltip="The 'target' output of Imagic Optimize Embedding (e_tgt)."),
                io.Conditioning.Input("optimized", tooltip="The 'optimized' output of Imagic Optimize Embedding (e_opt)."),
                io.Float.Input("alpha", default=ROW.settings["InvertEditImagicInterpolate.alpha"], min=0.0, max=2.0, step=0.01,
                               tooltip="Weight of the target embedding (paper's eta: about 0.7, 0.6-0.8 typical; the "
                                       "reference code's default 1.2 extrapolates past the target)."),
            ],
            outputs=[io.Conditioning.Output(tooltip="The interpolated conditioning, for KSampler's positive.")],
        )

    @classmethod
    def execute(cls, target, optimized, alpha) -> io.NodeOutput:
        check_finite(cls.NAME, alpha=alpha)
        e_tgt = conditioning_embedding(cls.NAME, target, "target")
        e_opt = conditioning_embedding(cls.NAME, optimized, "optimized")
        stamp = same_source(cls.NAME, target, optimized)
        if e_tgt.shape != e_opt.shape:
            raise NodeInputError(cls.NAME, f"inputs 'target' {tuple(e_tgt.shape)} and 'optimized' {tuple(e_opt.shape)} "
                                           f"differ in shape; connect the two outputs of one Imagic Optimize Embedding.")
        extra = dict(target[0][1])
        pooled_t, pooled_o = extra.get("pooled_output"), optimized[0][1].get("pooled_output")
        if (pooled_t is not None and pooled_o is not None and pooled_t.shape == pooled_o.shape
                and not torch.equal(pooled_t, pooled_o)):   # (the optimisation keeps the target's: nothing to mix)
            extra["pooled_output"] = interpolate(pooled_t, pooled_o, alpha)
        if stamp is not None:
            extra[STAMP] = stamp
        return io.NodeOutput([[interpolate(e_tgt, e_opt, alpha), extra]])


NODES = [ImagicOptimizeEmbedding, ImagicFineTune, ImagicInterpolate]
