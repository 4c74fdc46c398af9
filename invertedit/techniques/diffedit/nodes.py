"""DiffEdit Mask: the region an edit needs, from the difference of noise predictions under the
source and target prompts (math in ``mask.py``), as a MASK for Latent Blend or
any other node."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ...hostkit.schemas import io

from ...hostkit.errors import (NodeInputError, check_at_least, check_conditioning, check_finite, check_finite_tensor,
                                check_threshold)
from ...hostkit.sampling import check_latent_size, check_model_family, run_loop, schedule
from . import ROW
from .mask import diffedit_mask


class DiffEditMask(io.ComfyNode):
    NAME = "DiffEdit Mask"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDiffEditMask",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=("Estimates where an edit happens (DiffEdit, Couairon et al.): the source latent is noised to "
                         "'strength', the noise is predicted under the source and the target prompt, and where the two "
                         "disagree (averaged over several noises; clamped at 3x its mean and rescaled to [0, 1], as diffusers' "
                         "DiffEdit pipeline removes extreme values; thresholded) is the mask."),
            inputs=[
                io.Model.Input("model", tooltip="The model."),
                io.Latent.Input("latent", tooltip="The source image's latent (VAE Encode)."),
                io.Conditioning.Input("source", tooltip="The source prompt (paper: the query is compared with it)."),
                io.Conditioning.Input("target", tooltip="The target prompt."),
                io.Float.Input("strength", default=ROW.settings["InvertEditDiffEditMask.strength"], min=0.05, max=1.0, step=0.05,
                               tooltip="Noise level as a fraction of the schedule (paper: 0.5)."),
                io.Int.Input("samples", default=ROW.settings["InvertEditDiffEditMask.samples"], min=1, max=100, tooltip="Noise samples averaged (paper: 10)."),
                io.Float.Input("threshold", default=ROW.settings["InvertEditDiffEditMask.threshold"], min=0.0, max=1.0, step=0.01,
                               tooltip="Binarisation threshold on the rescaled difference (paper: 0.5, i.e. 1.5x its mean)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the noise samples."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="Binary mask at image resolution."),
                io.Mask.Output(display_name="soft_mask", tooltip="The rescaled difference it was cut from (1 where it reaches 3x its mean)."),
            ],
        )

    @classmethod
    def execute(cls, model, latent, source, target, strength, samples, threshold, seed) -> io.NodeOutput:
        check_model_family(model, DiffEditMask.NAME)
        check_finite(DiffEditMask.NAME, strength=strength, threshold=threshold)
        check_threshold(DiffEditMask.NAME, "threshold", threshold, "the difference is rescaled to at most 1",
                        "the mask would be empty", "the mask would be every pixel that differs at all", 0.5)
        check_at_least(DiffEditMask.NAME, 1, samples=samples)
        check_conditioning(DiffEditMask.NAME, "source", source, model)
        check_conditioning(DiffEditMask.NAME, "target", target, model)
        if not 0.001 <= strength <= 1.0:
            raise NodeInputError(DiffEditMask.NAME, f"input 'strength' is {strength}; give a fraction of the schedule "
                                                    f"from 0.001 up to 1 (paper: 0.5).")
        x = latent["samples"]
        if x.ndim != 4:
            raise NodeInputError(DiffEditMask.NAME, f"input 'latent' has shape {tuple(x.shape)}; an image latent is needed.")
        check_finite_tensor(DiffEditMask.NAME, "input 'latent'", x, "connect the image's latent from VAE Encode.")
        check_latent_size(DiffEditMask.NAME, "latent", x, model)
        sigmas = schedule(model, "normal", 1000)
        sigma = sigmas[int(round((1 - strength) * 1000))]
        noises = torch.randn((samples, *x.shape), generator=torch.Generator().manual_seed(seed))
        found: dict = {}

        def loop(denoise, x0, run_sigmas, step_callback):
            def eps_pair(z, s):
                return tuple((z - denoise.part(k, z, s.reshape(1).to(z))) / s for k in ("negative", "positive"))

            found["mask"], found["soft"] = diffedit_mask(eps_pair, x0, sigma.to(x0), noises.to(x0), threshold)
            step_callback(0, 1, x0)
            return x0

        run_loop(model, target, source, 1.0, x, torch.stack([sigma, torch.zeros(())]), loop)
        size = (x.shape[-2] * 8, x.shape[-1] * 8)
        up = lambda m: F.interpolate(m.float().cpu(), size=size, mode="nearest")[:, 0]
        return io.NodeOutput(up(found["mask"]), up(found["soft"]))


NODES = [DiffEditMask]
