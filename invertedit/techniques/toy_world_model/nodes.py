"""Toy World Model node: the pack's built-in demo/test text-to-image models (issues 3 and 12).

Tiny SD1.x-architecture models trained on the pack's toy worlds (``workshop/toyworld/``), where
every edit has a known exact answer; the pack's workflows, tests and benchmarks run on them.

- ``two objects (512 px)`` (default, issue 12): 512x512 scenes of two non-overlapping objects
  on a flat background, "a red circle and a blue square on a green background"; 64x64 latents,
  as SD1.5. Each word has to find its place there, and the model's cross-attention points each
  noun at its object (docs/toyworld.md has the measured gates; drawing from text it gets every
  object right in about half of the captions).
- ``one object (128 px)`` (issue 3): 128x128 images of one object, "a red circle on a green
  background"; 16x16 latents, fast, but a word's attention covers the whole picture.
- ``two objects, flow DiT (256 px)`` (issue 26): world 2's scenes drawn by a small
  Flux.1-dev-architecture transformer (the host's ``Flux`` class: double- and single-stream blocks,
  rectified flow, guidance distilled into its guidance input: FluxGuidance, no CFG), 16-channel
  latents in Flux's latent format, the pack's seeded random tiny Flux text encoders (T5 + CLIP-L);
  the pack's Flux workflows run on it.

All know the colours red, green, blue, yellow, white, black and the shapes circle, square,
triangle, and are built from the host's own classes, so every stock node takes their outputs
(for the two UNet worlds):
- MODEL: ``comfy.supported_models.SD15`` with the small ``unet_config`` of the world's
  ``config.json`` (eps prediction, SD1.x schedule, SD15 latent format), in a ``ModelPatcher``;
  weights from ``toy_unet.safetensors`` (stored float16), in the UNet dtype the host picks for a
  checkpoint (``hostkit.loaders.host_unet_dtype``: fp16 on a CUDA GPU, float32 on the CPU).
- CLIP: the pack's seeded random SD1 text encoder (``tiny_models.build_tiny_clip``; the real
  CLIP tokenizer) with the trained-against weights of ``toy_clip.safetensors`` loaded over it.
- VAE: the world's small autoencoder (8x, 4 channels, latents scaled like SD1.x) mounted in a
  ``comfy.sd.VAE``, so VAE Encode / VAE Decode work unchanged.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...demo.toy_model import DEFAULT_WORLD, WORLDS, load_toy_model
from ...hostkit.errors import check_choice


_DESCRIPTION = (
    "The pack's BUILT-IN DEMO / TEST models: tiny text-to-image models (about 4 M parameters) "
    "trained on the pack's toy worlds, flat backgrounds with coloured shapes. 'two objects' "
    "(default): 512x512, prompts like 'a red circle and a blue square on a green background'. 'one object': "
    "128x128, prompts like 'a red circle on a blue background'. 'two objects, flow DiT': the two-object "
    "world at 256x256 drawn by a tiny Flux.1-dev-style transformer (use FluxGuidance, about 4, no CFG), "
    "for the Flux workflows. Colours: red, "
    "green, blue, yellow, white, black; shapes: circle, square, triangle. Because the true "
    "answer of every edit in these worlds is known, the pack's workflows, tests and benchmarks "
    "use them. They are not general image models: use a real checkpoint loader for photographs."
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
            inputs=[
                io.Combo.Input(
                    "world",
                    options=list(WORLDS),
                    default=DEFAULT_WORLD,
                    tooltip=("Which toy world's model to load. 'two objects (512 px)' (default): two shapes, 512x512 "
                             "images / 64x64 latents like SD1.5; each noun's cross-attention points at its object, "
                             "so attention-based edits can be judged. 'one object (128 px)': one shape, 128x128 "
                             "images / 16x16 latents; faster, but a word's attention covers the whole picture. "
                             "'two objects, flow DiT (256 px)': the two-object world drawn by a tiny Flux.1-dev-"
                             "architecture model (rectified flow, distilled guidance: FluxGuidance about 4, no CFG; "
                             "32x32x16 latents)."),
                ),
            ],
            outputs=[
                io.Model.Output(tooltip="Built-in demo diffusion model (tiny, trained on a toy world only): SD1.x "
                                        "architecture for one object (128x128 images / 16x16 latents) and two objects "
                                        "(512x512 / 64x64); Flux.1 dev architecture for the flow DiT (256x256 / 32x32x16)."),
                io.Clip.Output(tooltip="Its frozen text encoder (real CLIP tokenizer; CLIP-L + T5 for the flow DiT). "
                                       "Prompts: 'a <colour> <shape> and a <colour> <shape> on a <colour> background' "
                                       "(two objects) or 'a <colour> <shape> on a <colour> background'."),
                io.Vae.Output(tooltip="Its small VAE: 8x downscale; 4 latent channels scaled like SD1.x, or 16 in "
                                      "Flux's latent format for the flow DiT."),
            ],
        )

    @classmethod
    def execute(cls, world: str = DEFAULT_WORLD) -> io.NodeOutput:
        check_choice(cls.NAME, "world", world, WORLDS)
        # Fresh objects per run (loading takes well under a second): nothing shared between runs.
        return io.NodeOutput(*load_toy_model(world))


NODES = [ToyModel]
