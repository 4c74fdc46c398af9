"""Null-Text Optimize: per-step null-text embeddings that make a DDIM inversion survive
classifier-free guidance (Mokady et al.; the math is in ``optimisation.py``).

The optimisation differentiates the UNet's unconditional prediction with respect to the
embedding. ComfyUI runs nodes under ``torch.inference_mode`` and checkpoints loaded there
hold inference tensors, which autograd refuses to save; the optimisation therefore runs with
inference mode off on a clone of the model whose layers take a fresh copy of their weights
and biases at every forward (``add_weight_wrapper``), and only when the weights need it. The input
MODEL is untouched, and an interrupted run leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
import logging

import torch
from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_at_least, check_choice, check_conditioning, check_finite, require_base
from ...hostkit.devices import wholly_on_gpu
from ...hostkit.family import model_family, parameterisation_of
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.gradients import check_no_control, with_weight_copies
from ...hostkit.sampling import check_interrupt, run_loop
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import NULL_TEXT
from . import ROW
from .optimisation import null_text_optimize


# Where each timestep's optimisation starts (the first; later ones start from the one before).
FROM_NEGATIVE = "negative (paper)"
FROM_SOURCE = "source prompt (faster)"
START_FROM = (FROM_NEGATIVE, FROM_SOURCE)


class NullTextOptimize(io.ComfyNode):
    """``start_from`` "source prompt" starts from the source prompt's embedding, the null text of
    Negative-Prompt Inversion (Miyake et al.), which already nearly reconstructs: with the paper's
    early stop far fewer Adam steps are taken (docs/measurements.md). Not the paper's recipe,
    hence an option; the negative's other parts (SDXL's pooled output) stay the negative's."""
    NAME = "Null-Text Optimize"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditNullTextOptimize",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Optimises one null-text (unconditional) embedding per step so that sampling at this cfg "
                         "follows the DDIM inversion (Mokady et al.). Apply the result with Apply Inversion and sample "
                         "with the same cfg and negative prompt; edit by changing the positive prompt. Costs UNet "
                         "forward and backward passes; save the INVERSION to reuse it."),
            inputs=[
                io.Model.Input("model", tooltip="The model the inversion was made with."),
                InversionSocket.Input("inversion", tooltip="A DDIM inversion made at cfg 1 (the paper's setting)."),
                io.Conditioning.Input("positive", tooltip="The source prompt the inversion was made with."),
                io.Conditioning.Input("negative", tooltip="The null text to start from: the empty prompt (paper). Sample with the same one."),
                io.Float.Input("cfg", default=7.5, min=1.0, max=30.0, step=0.1, round=0.01,
                               tooltip="The guidance scale you will sample with (paper: 7.5)."),
                io.Int.Input("inner_steps", default=ROW.settings["InvertEditNullTextOptimize.inner_steps"], min=1, max=100,
                             tooltip="Adam steps per timestep at most (paper: 10)."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditNullTextOptimize.learning_rate"], min=1e-5, max=1.0, step=0.001,
                               tooltip="Adam learning rate at the first step, decayed as lr * (1 - i/100) (paper: 0.01)."),
                io.Boolean.Input("early_stop", default=True,
                                 tooltip="Stop a timestep once the loss is below 1e-5 + i * 2e-5 (paper: on)."),
                io.Combo.Input("start_from", options=list(START_FROM), default=FROM_NEGATIVE,
                               tooltip="The embedding the first timestep's optimisation starts from. 'negative (paper)': "
                                       "the negative input's. 'source prompt (faster)': the source prompt's (Negative-Prompt "
                                       "Inversion's null text), which nearly reconstructs already: with early stop on, "
                                       "6-9x fewer backward passes than from the empty prompt on the toy models, reconstructing as well or better."),
                io.Boolean.Input("cuda_graph", default=True, optional=True,
                                 tooltip="On a GPU holding the whole model, capture the forward and backward passes in "
                                         "CUDA graphs once and replay them: the same embeddings, without the CPU cost of "
                                         "issuing each pass's kernels. Off: every pass runs eagerly. Not in the paper; "
                                         "ignored on a CPU and when the host loads the model partially (low VRAM)."),
            ],
            outputs=[InversionSocket.Output(display_name="INVERSION")],
        )

    @classmethod
    def execute(cls, model, inversion, positive, negative, cfg, inner_steps, learning_rate, early_stop,
                start_from: str = FROM_NEGATIVE, cuda_graph: bool = True) -> io.NodeOutput:
        require_base(NULL_TEXT, inversion, model)
        if inversion.trajectory.shape[1] > 1:
            raise NodeInputError(NullTextOptimize.NAME, f"input 'inversion' is of a clip of {inversion.trajectory.shape[1]} "
                                                        f"frames, and Null-Text Optimize finds one null text for one "
                                                        f"image (shared by the frames it reconstructs them worse); for a "
                                                        f"clip use Direct Inversion (exact for every frame) or "
                                                        f"Negative-Prompt Inversion.")
        check_finite(NullTextOptimize.NAME, cfg=cfg, learning_rate=learning_rate)
        check_at_least(NullTextOptimize.NAME, 1, inner_steps=inner_steps)
        check_choice(NullTextOptimize.NAME, "start_from", start_from, START_FROM)
        check_conditioning(NullTextOptimize.NAME, "positive", positive, model)
        check_conditioning(NullTextOptimize.NAME, "negative", negative, model, one_prompt=True)
        check_no_control(NullTextOptimize.NAME, "positive", positive)
        check_no_control(NullTextOptimize.NAME, "negative", negative)
        if conditioning_fingerprint(positive) != inversion.fingerprint.get("positive"):
            raise NodeInputError(NullTextOptimize.NAME, "input 'positive' is not the source prompt the inversion was made with; "
                                       "connect the same CONDITIONING that DDIM Invert got.")
        start = (positive if start_from == FROM_SOURCE else negative)[0][0]
        if start.shape != negative[0][0].shape:
            raise NodeInputError(NullTextOptimize.NAME, f"start_from {start_from!r}: the source prompt's embedding has "
                                 f"{start.shape[1]} tokens and the negative's {negative[0][0].shape[1]}; give prompts "
                                 f"of the same token length, or start from the negative.")
        found: dict = {}
        parameterisation = parameterisation_of(model_family(model))
        differentiable = with_weight_copies(model)

        def loop(denoise, x, sigmas, step_callback):
            with torch.inference_mode(False), torch.enable_grad():
                trajectory = inversion.trajectory.to(x).clone()
                null_init = start.to(x).clone()
                run_sigmas = sigmas.to(x).clone()

                def cond_eps(z, sigma):
                    return (z - denoise.part("positive", z, sigma)) / sigma

                def uncond_eps(z, sigma, context):
                    return (z - denoise.part("negative", z, sigma, context)) / sigma

                found["nulls"], found["stats"] = null_text_optimize(
                    cond_eps, uncond_eps, trajectory, run_sigmas, null_init, cfg=cfg, inner_steps=inner_steps,
                    lr=learning_rate, early_stop=early_stop, callback=step_callback,
                    on_inner_step=check_interrupt, parameterisation=parameterisation,
                    capture=bool(cuda_graph) and wholly_on_gpu(differentiable), log=logging.info)
            return x

        run_loop(differentiable, positive, negative, cfg, inversion.latent, inversion.sampling_sigmas, loop)
        stats = found["stats"]
        settings = dict(inversion.settings, null_text={"cfg": cfg, "inner_steps": inner_steps, "learning_rate": learning_rate,
                                                       "early_stop": early_stop, "start_from": start_from,
                                                       "unet_forward": stats["forward"],
                                                       "unet_backward": stats["backward"],
                                                       "cuda_graphs": stats["graphs"]})
        clues = dict(inversion.clues, null_text=found["nulls"].detach().float().cpu())
        return io.NodeOutput(dataclasses.replace(inversion, method=NULL_TEXT.name, settings=settings, clues=clues))


NODES = [NullTextOptimize]
