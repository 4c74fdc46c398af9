"""Noise Map Guidance: NMG (Cho et al., ICLR 2024) as a GUIDER for SamplerCustomAdvanced (math in
``guidance.py``, run by ``hostkit/inversion_guidance.py``).

A guider rather than a model patch because each step needs what no patch can do: an extra,
differentiated unconditional pass of the source rows, and the text-guided pass evaluated at the
latent that pass moved them to. The guider takes the inversion's latents (the noise maps) from
the INVERSION it is given, moves the source rows, runs the usual batched pass there, and hands
the host's ddim/euler step the prediction that lands where the reference's second DDIM step
lands. Attention editors (Attention Inject, MasaCtrl) patch the model before it, as usual.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_bounds, check_choice, check_conditioning, check_finite
from ...hostkit.gradients import with_weight_copies
from ...hostkit.inversion_guidance import InversionDriver, carrying
from ...hostkit.sampling import check_model_family
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DDIM, FIXED_POINT, NULL_TEXT
from . import ROW
from .guidance import LOSSES, NoiseMapPolicy

# Fewer steps than this: the pull at the paper's scales overshoots (measured on the toy world).
FEWEST_STEPS = 10

# The inversions NMG guides with: plain trajectories (the paper: DDIM), and a null-text one.
TAKES = (DDIM, FIXED_POINT, NULL_TEXT)


# The largest scales that still give the edit (docs/measurements.md, "Noise Map Guidance's largest scales"): on world 2's
# sample (20 steps) noise_map_scale 20 and grad_scale 10000 edit as the paper's 10 and 5000 do; at noise_map_scale 30 and
# grad_scale 15000 the edit loses the square, at 100 and 50000 (the earlier maxima) the picture mottles and the edit is gone.
NOISE_MAP_SCALE_MAX = 20.0
GRAD_SCALE_MAX = 10000.0


class NoiseMapGuidance(io.ComfyNode):
    NAME = "Noise Map Guidance"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditNoiseMapGuidance",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=(
                "NMG (Cho et al.): the inversion's latents (noise maps) guide the source's reconstruction while it is "
                "sampled: each step first pulls the source towards the next noise map by the gradient of their "
                "distance, then applies classifier-free guidance there. No optimisation; the edit comes from the "
                "attention editor (Attention Inject, MasaCtrl) that reads the better-kept source. A GUIDER for "
                "SamplerCustomAdvanced with the ddim sampler, the inversion's SIGMAS and the pair editor's LATENT. "
                "Costs one extra unconditional pass with its gradient per step."),
            inputs=[
                io.Model.Input("model", tooltip="The model, patched by a pair editor (Attention Inject, MasaCtrl) or not."),
                io.Conditioning.Input("positive", tooltip="The pair editor's CONDITIONING pair (row 0 source, row 1 "
                                                          "target), or the source prompt for a reconstruction."),
                io.Conditioning.Input("negative", tooltip="The null text (paper: the empty prompt); the noise-map pass "
                                                          "uses it too."),
                InversionSocket.Input("inversion", tooltip="DDIM Invert's INVERSION (paper; 10 steps or more), "
                                                           "Fixed-Point Invert's or Null-Text Optimize's; its latents "
                                                           "are the noise maps."),
                io.Float.Input("cfg", default=ROW.settings["InvertEditNoiseMapGuidance.cfg"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Text guidance scale (paper: 10)."),
                io.Float.Input("noise_map_scale", default=ROW.settings["InvertEditNoiseMapGuidance.noise_map_scale"], min=0.0,
                               max=NOISE_MAP_SCALE_MAX, step=0.1,
                               tooltip=f"Noise map guidance scale (paper: 10; at most {NOISE_MAP_SCALE_MAX:g}: past it the "
                                       f"edit loses objects and the picture mottles)."),
                io.Float.Input("grad_scale", default=ROW.settings["InvertEditNoiseMapGuidance.grad_scale"], min=0.0,
                               max=GRAD_SCALE_MAX, step=100.0,
                               tooltip=f"Gradient scale (paper: 5000, for a 64x64 latent: the distance is a mean, so "
                                       f"the pull per element grows as the latent shrinks; at most {GRAD_SCALE_MAX:g}: "
                                       f"past it the edit loses objects and the picture mottles)."),
                io.Combo.Input("loss", options=list(LOSSES), default="l1",
                               tooltip="Distance to the noise map (paper: l1; the code also offers l2 and smooth_l1)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, inversion, cfg, noise_map_scale, grad_scale, loss) -> io.NodeOutput:
        node = NoiseMapGuidance.NAME
        check_model_family(model, node)
        check_choice(node, "loss", loss, LOSSES)
        check_finite(node, cfg=cfg, noise_map_scale=noise_map_scale, grad_scale=grad_scale)
        check_bounds(cls, noise_map_scale=noise_map_scale, grad_scale=grad_scale)
        check_conditioning(node, "positive", positive, model)
        check_conditioning(node, "negative", negative, model)
        patched = carrying(model, inversion, node, TAKES)
        steps = len(inversion.sampling_sigmas) - 1
        if steps < FEWEST_STEPS:
            raise NodeInputError(node, f"input 'inversion' has {steps} steps; NMG's pull towards the noise maps "
                                       f"overshoots with fewer than {FEWEST_STEPS} (toy world, paper scales: 3.7 dB at 5 "
                                       f"steps, 36.5-37.6 dB at 10-50). Invert with {FEWEST_STEPS} steps or more "
                                       f"(paper: 50).")
        policy = NoiseMapPolicy(inversion, cfg, noise_map_scale, grad_scale, loss)
        return io.NodeOutput(InversionDriver(with_weight_copies(patched), policy,
                                             {"positive": positive, "negative": negative}))


NODES = [NoiseMapGuidance]
