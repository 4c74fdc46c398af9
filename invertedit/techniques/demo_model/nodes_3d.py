"""Demo 3D Model node (issue 83): a tiny seeded random-weight image-to-3D model for testing, what the host's Image
Only Checkpoint Loader gives for a 3D checkpoint (MODEL, CLIP_VISION, VAE, in its slots' order): Hunyuan3D-2 (the
multi-view DiT, a DINOv2 image encoder and the ShapeVAE; ``demo/tiny_3d_models.py``) or SV3D (``demo/tiny_sv3d.py``).

It lets the view-set workflows run their 3D end without downloading a checkpoint. Random weights: the shapes and
orbit views it makes are noise; it tests mechanics, not quality.
"""
from __future__ import annotations

from ...demo.tiny_3d_models import FAMILIES_3D
from ...hostkit.errors import check_choice
from ...hostkit.schemas import io

_DESCRIPTION = (
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
            description=_DESCRIPTION,
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

