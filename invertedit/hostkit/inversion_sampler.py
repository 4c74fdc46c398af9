"""The pack's own samplers for inversions the stock samplers cannot replay (EDICT's coupled
sequences, edit-friendly DDPM's noise maps): the k-diffusion sampler-function signature, the
checks they share, and the wiring to the host's progress callback."""
from __future__ import annotations

import logging
import math

import comfy.samplers
import torch
from comfy_api.latest import io

from ..inversion.methods import Method
from ..inversion.record import Inversion, InversionMismatch
from .errors import NodeInputError, check_finite_tensor, check_inversion, check_made_with
from .sockets import Inversion as InversionSocket


class InversionSampling:
    """Base of a sampler function replaying ``inversion``; subclasses implement ``run``."""

    NAME = "Inversion Sampler"
    METHOD: Method   # the inversion method this sampler replays
    SAME_CFG = False   # whether the inversion reconstructs only at the cfg it was made with

    def __init__(self, inversion: Inversion):
        self.inversion = inversion

    def run(self, denoise, x: torch.Tensor, sigmas: torch.Tensor, on_step) -> torch.Tensor:
        raise NotImplementedError

    def broadcast(self, clue: torch.Tensor, batch: int, dim: int = 0) -> torch.Tensor:
        """A per-image clue repeated over a latent batch (a source/target pair shares the source's)."""
        if batch % clue.shape[dim]:
            raise NodeInputError(self.NAME, f"the latent batch ({batch}) is not a multiple of the inversion's "
                                            f"({clue.shape[dim]}).")
        reps = [1] * clue.ndim
        reps[dim] = batch // clue.shape[dim]
        return clue.repeat(*reps)

    def __call__(self, model, x, sigmas, extra_args=None, callback=None, disable=None, **kwargs):
        inv = self.inversion
        extra_args = extra_args or {}
        missing = self.METHOD.missing_clues(inv.clues)
        if missing:
            raise NodeInputError(self.NAME, f"the inversion is a {inv.method} inversion without its data "
                                            f"({', '.join(missing)}); make it again with {self.METHOD.made_by}.")
        try:
            start = inv.locate(sigmas)
        except InversionMismatch as e:
            raise NodeInputError(self.NAME, str(e)) from None
        check_finite_tensor(self.NAME, "the latent being sampled", x,
                            "sample the inversion's own LATENT output (a latent with NaN gives a black image).")
        if start != inv.start_step or len(sigmas) != len(inv.sampling_sigmas):
            raise NodeInputError(self.NAME, f"the run covers steps {start} to {start + len(sigmas) - 1}; this inversion "
                                            f"is sampled over its whole schedule, from step {inv.start_step}.")
        guider = getattr(model, "inner_model", None)   # the k-diffusion wrapper's guider (CFGGuider)
        patcher = getattr(guider, "model_patcher", None)
        if patcher is not None:
            check_made_with(self.NAME, inv.fingerprint, patcher, "the MODEL being sampled is not the one the inversion "
                            "was made with", "Sample with the model you inverted with, or invert again with this one.")
        cfg, made_at = getattr(guider, "cfg", None), inv.settings.get("cfg")
        if cfg is not None and made_at is not None and not abs(float(cfg) - float(made_at)) <= 1e-6:
            if self.SAME_CFG or not math.isfinite(float(cfg)):
                raise NodeInputError(self.NAME, f"the guider's cfg is {cfg:g}, and this {inv.method} inversion was made "
                                                f"at cfg {float(made_at):g}; it reconstructs only at that cfg. Set the "
                                                f"guider's cfg to {float(made_at):g}, or invert again at {cfg:g}.")
            logging.info("%s: sampling at cfg %s, inverted at cfg %s: the source is reconstructed exactly only at the "
                         "same cfg.", self.NAME, cfg, made_at)

        def denoise(z, sigma):
            return model(z, sigma, **extra_args)

        def on_step(i, total, x_now):
            if callback is not None:
                callback({"x": x_now, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": x_now})

        return self.run(denoise, x, sigmas, on_step)


class InversionSamplerNode(io.ComfyNode):
    """Base of the pack's sampler nodes: one INVERSION in, a SAMPLER for SamplerCustomAdvanced out
    (``SAMPLING`` says which sampler function and so which method)."""

    SAMPLING: type[InversionSampling]
    NODE_ID = ""
    DESCRIPTION = ""

    @classmethod
    def define_schema(cls) -> io.Schema:
        made_by = cls.SAMPLING.METHOD.made_by
        return io.Schema(
            node_id=cls.NODE_ID,
            display_name=cls.SAMPLING.NAME,
            category="InvertEdit/inversion",
            description=cls.DESCRIPTION,
            inputs=[InversionSocket.Input("inversion", tooltip=f"From {made_by} (or a loaded inversion made by it).")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        method, node = cls.SAMPLING.METHOD, cls.SAMPLING.NAME
        check_inversion(node, inversion)
        if inversion.method != method.name:
            raise NodeInputError(node, f"input 'inversion' is a {inversion.method} inversion; the "
                                       f"{node} needs one from {method.made_by}.")
        missing = method.missing_clues(inversion.clues)
        if missing:
            raise NodeInputError(node, f"input 'inversion' is a {method.name} inversion without its data "
                                       f"({', '.join(missing)}); make it again with {method.made_by}.")
        return io.NodeOutput(comfy.samplers.KSAMPLER(cls.SAMPLING(inversion)))
