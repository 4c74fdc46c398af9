"""Toy World Model node: the pack's built-in demo/test text-to-image model (issue 3).

A tiny SD1.x-architecture model trained on the toy world (``toyworld/``): 128x128 images of a
flat background and one object, captioned "a red circle on a blue background". It is what the
pack's workflows, tests and benchmark run on, because every edit in that world has a known
exact answer. It only knows that world's words (colours: red, green, blue, yellow, white,
black; shapes: circle, square, triangle) and makes 128x128 images.

Built from the host's own classes, so every stock node takes its outputs:
- MODEL: ``comfy.supported_models.SD15`` with the small ``unet_config`` of
  ``models/toyworld/config.json`` (eps prediction, SD1.x schedule, SD15 latent format), in a
  ``ModelPatcher``; weights from ``toy_unet.safetensors`` (stored float16, run float32).
- CLIP: the pack's seeded random SD1 text encoder (``tiny_models.build_tiny_clip``; the real
  CLIP tokenizer) with the trained-against weights of ``toy_clip.safetensors`` loaded over it.
- VAE: ``toyworld.ae.ToyAutoencoder`` (normalisation-free, 8x, 4 channels, latents scaled like
  SD1.x) mounted in a ``comfy.sd.VAE``, so VAE Encode / VAE Decode work unchanged.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..adapters.toy_model import load_toy_model


_DESCRIPTION = (
    "The pack's BUILT-IN DEMO / TEST model: a tiny text-to-image model (about 4 M parameters) "
    "trained on the pack's toy world, 128x128 images of one coloured shape on a flat background. "
    "Prompts look like 'a red circle on a blue background' (colours: red, green, blue, yellow, "
    "white, black; shapes: circle, square, triangle); use 128x128 latents. Because the true "
    "answer of every edit in that world is known, the pack's workflows, tests and benchmark use "
    "it. It is not a general image model: use a real checkpoint loader for real photographs."
)


class ToyModel(io.ComfyNode):
    NAME = "Toy World Model (built-in demo)"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditToyModel",
            display_name=cls.NAME,
            category="InvertEdit/testing",
            description=_DESCRIPTION,
            inputs=[],
            outputs=[
                io.Model.Output(tooltip="Built-in demo diffusion model (SD1.x architecture, tiny, trained on the toy world only). "
                                        "Use 128x128 images / 16x16 latents."),
                io.Clip.Output(tooltip="Its frozen text encoder (real CLIP tokenizer). Prompts: 'a <colour> <shape> on a <colour> background'."),
                io.Vae.Output(tooltip="Its small VAE: 8x downscale, 4 latent channels, latents scaled like SD1.x."),
            ],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        # Fresh objects per run (loading takes well under a second): nothing shared between runs.
        return io.NodeOutput(*load_toy_model())


NODES = [ToyModel]
