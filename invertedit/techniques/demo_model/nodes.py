"""Demo Model node: a tiny seeded random-weight SD1 / SD2-v / SDXL / Flux.1 dev / Flux.1 schnell / SD3 /
Qwen-Image model for testing; the Demo 3D Model node: the same for Hunyuan3D-2 and SV3D (issue 83).

It lets every workflow of the pack run without downloading a checkpoint. The weights are
random, so the images it makes are noise: it tests mechanics, not quality.
"""
from __future__ import annotations

from ...demo import tiny_flow_models, tiny_models
from ...demo.tiny_3d_models import FAMILIES_3D
from ...hostkit.errors import check_choice
from ...hostkit.schemas import io


_DESCRIPTION = (
    "A tiny Stable Diffusion model with RANDOM weights drawn from a seed (MODEL, CLIP and VAE "
    "built from ComfyUI's own SD1 / SD2 v-prediction / SDXL classes, shrunk to a few MB), or a tiny "
    "flow-matching model: Flux.1 dev (with guidance embedding: use FluxGuidance, cfg 1), Flux.1 schnell "
    "or SD3 (MMDiT, clip_l + clip_g text encoders without T5), each with a 16-channel VAE (use "
    "EmptySD3LatentImage for their empty latents), or Qwen-Image (its MMDiT with 2 joint blocks, a 2-layer "
    "Qwen2.5-VL text encoder with the real tokenizer, a small Wan 2.1 VAE: 16-channel latents with a frame axis; "
    "sample it with true cfg, it has no distilled guidance). "
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
                    options=list(tiny_models.FAMILIES) + list(tiny_flow_models.FLOW_FAMILIES),
                    default="sd1",
                    tooltip=("Which architecture to imitate: sd1 (SD1.x, eps prediction), sd2-v "
                             "(SD2.x, v prediction), sdxl (SDXL, two text encoders + pooled), "
                             "flux-dev (Flux.1 dev: rectified flow, guidance embedding), flux-schnell "
                             "(Flux.1 schnell: rectified flow, no guidance), sd3 (SD3 MMDiT: rectified "
                             "flow, shift 3), qwen-image (Qwen-Image's MMDiT on Qwen2.5-VL text, Wan 2.1 VAE: "
                             "rectified flow, true cfg), wan21 (Wan 2.1 text-to-video: self- and cross-attention "
                             "to UMT5 text, clips through a Wan 2.1 VAE, shift 8), wan22 (Wan 2.2 TI2V 5B: the "
                             "same on the Wan 2.2 VAE's 48 channels, 16x). The flow models use 16-channel latents "
                             "(wan22: 48). "
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
                io.Vae.Output(tooltip=("Tiny random-weight VAE, 8x downscale, 4 latent channels (16 for "
                                       "flux-dev, flux-schnell, sd3, qwen-image and wan21; wan22: 48 at 16x) "
                                       "(testing only).")),
            ],
        )

    @classmethod
    def execute(cls, family: str = "sd1", seed: int = 0) -> io.NodeOutput:
        # Built fresh on every call (it takes well under a second): no state is shared
        # between runs or between nodes, so the host's output cache stays sound.
        if family in tiny_flow_models.FLOW_FAMILIES:
            model, clip, vae = tiny_flow_models.build_tiny_flow_models(family, seed=seed)
        else:
            model, clip, vae = tiny_models.build_tiny_models(family, seed=seed)
        return io.NodeOutput(model, clip, vae)


# ----------------------------------------------------------------------------- the Demo 3D Model (issue 83)

_DESCRIPTION_3D = (
    "A tiny image-to-3D model with RANDOM weights drawn from a seed, built from ComfyUI's own classes and shrunk to a "
    "few hundred thousand parameters, in the slots of Image Only Checkpoint Loader (MODEL, CLIP_VISION, VAE): "
    "hunyuan3d2 (Hunyuan3D-2 mv: its flow DiT, a DINOv2 image encoder for CLIP Vision Encode, the ShapeVAE for VAE "
    "Decode Hunyuan3D) or sv3d (SV3D_u: its video UNet, a CLIP image encoder, an SD-style VAE). It exists to test this "
    "pack's mechanics and to run its 3D workflows without downloading a checkpoint; its meshes and orbit views are "
    "noise. Use Image Only Checkpoint Loader with the real checkpoint for actual 3D.")


class Demo3DModel(io.ComfyNode):
    NAME = "Demo 3D Model (tiny, random weights)"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDemo3DModel",
            display_name=cls.NAME,
            category="InvertEdit/testing",
            description=_DESCRIPTION_3D,
            inputs=[
                io.Combo.Input("family", options=list(FAMILIES_3D), default=list(FAMILIES_3D)[0],
                               tooltip="Which architecture to imitate: hunyuan3d2 (Hunyuan3D-2 mv: the views' DINOv2 "
                                       "tokens condition a flow DiT over the shape's latent tokens, decoded to a "
                                       "voxel grid and a mesh), sv3d (SV3D_u: orbit views of one image). Random "
                                       "weights, for testing only."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Seed of the random weights: the same seed always gives the same tiny test "
                                     "model. This is not the sampling seed."),
            ],
            outputs=[
                io.Model.Output(tooltip="Tiny random-weight 3D diffusion model (testing only)."),
                io.ClipVision.Output(tooltip="Tiny random-weight image encoder (hunyuan3d2: DINOv2; sv3d: CLIP "
                                             "ViT-H's layout) for CLIP Vision Encode (testing only)."),
                io.Vae.Output(tooltip="Tiny random-weight VAE (hunyuan3d2: the ShapeVAE, for VAE Decode Hunyuan3D; "
                                      "sv3d: an image VAE) (testing only)."),
            ],
        )

    @classmethod
    def execute(cls, family: str = "hunyuan3d2", seed: int = 0) -> io.NodeOutput:
        check_choice(cls.NAME, "family", family, tuple(FAMILIES_3D))
        # built fresh on every call (well under a second): nothing shared between runs, the host's cache stays sound
        return io.NodeOutput(*FAMILIES_3D[family](seed))


NODES = [DemoModel, Demo3DModel]
