"""What the SV3D orbit workflow costs (issue 83): SV3D's orbit (21 views in one run) against the consistent edit of
its views on SD1.5, in multiply-adds of the real-sized models, counted by torch's ``FlopCounterMode`` on the host's own
UNet and VAE classes built on the meta device (no weights, no memory: the count of every matmul, convolution and
attention of one forward, exact for these shapes).

    python -m workshop.benchmarks.sv3d_cost [--views 21] [--steps 50]

The runs are the shipped template's (``invertedit/workflows/orbit.py``): SV3D_u at 576 px (72 x 72 latent), 50 steps,
cfg 2.5 (every step's batch holds the conditional and the unconditional row of each view: 2V rows); the SD1.5 edit at
512 px: DDIM Invert at cfg 1 (V rows a step), the pair sampler at the edit's cfg 5 (source and target views, each
conditional and unconditional: 4V rows a step) with Cross-View Attention's extra self-attention on every one of those
rows (4 references: ``view_cost.sd15_attention``, GaussCtrl's ``2 R N^2 C`` per layer); the VAEs' encodes and decodes.
The text and image encoders (one call each) are left out.
"""
from __future__ import annotations

import argparse
import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

from workshop.benchmarks.view_cost import sd15_attention
from workshop.headless.boot import boot

#: the host's configs of the real models, as ``comfy.model_detection`` reads them from the checkpoints
SD15_UNET = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
             "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 320,
             "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
             "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1, "use_linear_in_transformer": False,
             "context_dim": 768, "num_heads": 8, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
             "use_temporal_attention": False, "use_temporal_resblock": False}
SV3D_UNET = {**SD15_UNET, "in_channels": 8, "num_classes": "sequential", "adm_in_channels": 256,
             "use_linear_in_transformer": True, "context_dim": 1024, "num_heads": -1, "num_head_channels": 64,
             "extra_ff_mix_layer": True, "use_spatial_context": True, "merge_strategy": "learned_with_images",
             "merge_factor": 0.0, "video_kernel_size": [3, 1, 1], "use_temporal_resblock": True,
             "use_temporal_attention": True, "disable_temporal_crossattention": False}
SD_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
          "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
SV3D_SIDE, SD15_SIDE = 576, 512
SV3D_CFG_ROWS, EDIT_ROWS, INVERT_ROWS = 2, 4, 1   # rows a view and step: cond + uncond; the pair's 2 x 2; cfg 1


def _macs(run) -> float:
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops() / 2


def unet_macs(config: dict, rows: int, side: int, context: tuple[int, int], frames: int | None = None) -> tuple:
    """(parameters, multiply-adds of one forward of ``rows`` rows at ``side`` px) of the host's UNet of ``config``."""
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    with torch.device("meta"):
        unet = UNetModel(**config, device="meta", operations=comfy.ops.disable_weight_init)
    meta = {"device": "meta"}
    x = torch.zeros(rows, config["in_channels"], side // 8, side // 8, **meta)
    kw = {}
    if frames:
        kw = {"num_video_frames": frames, "image_only_indicator": torch.zeros(rows // frames, frames, **meta),
              "y": torch.zeros(rows, config["adm_in_channels"], **meta)}
    macs = _macs(lambda: unet(x, torch.zeros(rows, **meta), torch.zeros(rows, *context, **meta), **kw))
    return sum(p.numel() for p in unet.parameters()), macs


def vae_macs(side: int) -> tuple[float, float]:
    """(encode, decode) multiply-adds of one picture of ``side`` px through the host's SD VAE."""
    from comfy.ldm.models.autoencoder import AutoencoderKL

    with torch.device("meta"):
        ae = AutoencoderKL(ddconfig=dict(SD_VAE), embed_dim=4)
    return (_macs(lambda: ae.encode(torch.zeros(1, 3, side, side, device="meta"))),
            _macs(lambda: ae.decode(torch.zeros(1, 4, side // 8, side // 8, device="meta"))))


def measure(views: int, steps: int) -> dict:
    sv3d_params, sv3d_step = unet_macs(SV3D_UNET, SV3D_CFG_ROWS * views, SV3D_SIDE, (1, 1024), frames=views)
    sd_params, sd_row = unet_macs(SD15_UNET, 1, SD15_SIDE, (77, 768))
    aligned, plain = sd15_attention(4)
    cross_view_row = (aligned - plain) * 1e9
    sv3d_enc, sv3d_dec = vae_macs(SV3D_SIDE)
    sd_enc, sd_dec = vae_macs(SD15_SIDE)
    orbit = {"UNet": steps * sv3d_step, "VAE": sv3d_enc + views * sv3d_dec}
    edit = {"UNet": steps * (INVERT_ROWS + EDIT_ROWS) * views * sd_row,
            "Cross-View Attention": steps * EDIT_ROWS * views * cross_view_row,
            "VAE": views * sd_enc + 2 * views * sd_dec}
    return {"views": views, "steps": steps, "sv3d_params": sv3d_params, "sd_params": sd_params,
            "sv3d_row": sv3d_step / (SV3D_CFG_ROWS * views), "sd_row": sd_row, "cross_view_row": cross_view_row,
            "orbit": orbit, "edit": edit}


def table(r: dict) -> str:
    orbit, edit = sum(r["orbit"].values()), sum(r["edit"].values())
    t = 1e12
    lines = [f"\n### The SV3D orbit workflow's arithmetic: {r['views']} views, {r['steps']} steps each stage "
             "(multiply-adds of the real models, FlopCounterMode on the meta device)\n",
             "| stage | UNet | Cross-View Attention | VAE | total | share |", "|---|---|---|---|---|---|",
             f"| SV3D orbit ({r['sv3d_params'] / 1e9:.2f} B-parameter video UNet, {r['sv3d_row'] / 1e9:,.0f} G a row at "
             f"{SV3D_SIDE} px, 2V rows a step) | {r['orbit']['UNet'] / t:,.0f} T | - | {r['orbit']['VAE'] / t:,.0f} T "
             f"| {orbit / t:,.0f} T | {orbit / (orbit + edit):.0%} |",
             f"| SD1.5 edit (DDIM Invert V rows + pair 4V rows a step; {r['sd_params'] / 1e9:.2f} B, "
             f"{r['sd_row'] / 1e9:,.0f} G a row at {SD15_SIDE} px, Cross-View +{r['cross_view_row'] / 1e9:,.0f} G a "
             f"row) | {r['edit']['UNet'] / t:,.0f} T | {r['edit']['Cross-View Attention'] / t:,.0f} T "
             f"| {r['edit']['VAE'] / t:,.0f} T | {edit / t:,.0f} T | {edit / (orbit + edit):.0%} |",
             f"\nThe orbit costs {orbit / edit:.2f}x the edit of its views.\n"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=21)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    boot(base_dir=tempfile.mkdtemp(prefix="invertedit-sv3d-cost-"))
    print(table(measure(args.views, args.steps)))


if __name__ == "__main__":
    main()
