"""Demo Model node: a tiny seeded random-weight SD1 / SD2-v / SDXL model for testing.

It lets every workflow of the pack run without downloading a checkpoint. The weights are
random, so the images it makes are noise: it tests mechanics, not quality.
"""
from __future__ import annotations

from ..hostkit.schemas import io

from ..demo import tiny_models


_DESCRIPTION = (
    "A tiny Stable Diffusion model with RANDOM weights drawn from a seed (MODEL, CLIP and VAE "
    "built from ComfyUI's own SD1 / SD2 v-prediction / SDXL classes, shrunk to a few MB). "
    "It exists to test this pack's mechanics and to run its workflows without downloading a "
    "checkpoint; it cannot make real images (its outputs are structured noise). "
    "Use a real checkpoint loader for actual editing."
)


class DemoModel(io.ComfyNode):
    NAME = "Demo Model (tiny, random weights)"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDemoModel",
            display_name=cls.NAME,
            category="InvertEdit/testing",
            description=_DESCRIPTION,
            inputs=[
                io.Combo.Input(
                    "family",
                    options=list(tiny_models.FAMILIES),
                    default="sd1",
                    tooltip=("Which architecture to imitate: sd1 (SD1.x, eps prediction), sd2-v "
                             "(SD2.x, v prediction), sdxl (SDXL, two text encoders + pooled). "
                             "Random weights, for testing only: not for real images."),
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    tooltip=("Seed of the random weights: the same seed always gives the same "
                             "tiny test model. This is not the sampling seed."),
                ),
            ],
            outputs=[
                io.Model.Output(tooltip="Tiny random-weight diffusion model (testing only)."),
                io.Clip.Output(tooltip="Tiny random-weight text encoder (testing only)."),
                io.Vae.Output(tooltip="Tiny random-weight VAE, 8x downscale, 4 latent channels (testing only)."),
            ],
        )

    @classmethod
    def execute(cls, family: str = "sd1", seed: int = 0) -> io.NodeOutput:
        # Built fresh on every call (it takes well under a second): no state is shared
        # between runs or between nodes, so the host's output cache stays sound.
        model, clip, vae = tiny_models.build_tiny_models(family, seed=seed)
        return io.NodeOutput(model, clip, vae)


NODES = [DemoModel]
