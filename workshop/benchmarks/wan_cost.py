"""Dispatched operations per model evaluation and per step of a Wan clip edit at Wan's real depth (Wan 2.1 1.3B: 30
blocks; 14B and Wan 2.2 A14B's experts: 40) at the tiny width (what a step dispatches grows with the blocks, not the
width), against stock sampling of the same clip, as ``dispatch_count`` and ``qwen_flow_cost`` count them (issue 82).

    python -m workshop.benchmarks.wan_cost [--steps 4] [--blocks 30] [--frames 3]

Per evaluation (cfg 1, the target prompt alone, as the flow inversions sample; one clip): the Flow Sampler's
solvers and RF-Inversion's patch against the stock euler sampler. Per step: FlowEdit (FiVE's Wan-Edit: acting at
every step, each prompt with its classifier-free guidance, the empty negative) against the host's CFGGuider on the
same rows (a batch of 2 clips at cfg 5: 4 rows a step, as FlowEdit's source and target with their negatives; Wan's
prompts are padded to 512 tokens, so both run in one call); and Attention Store's recording of per-word maps
(every block's cross-attention) per evaluation. The clip: ``frames`` latent frames (1 + 4 (frames - 1) video frames)
of 16 x 16 (a 128 px clip).
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import (FLOWEDIT_CHAIN, SOURCE, TARGET, custom_per_step, flow_sampler_rows,
                                                nfe_table, table)
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode

#: Wan's blocks: Wan 2.1 T2V 1.3B has 30, 14B (and Wan 2.2 A14B's two experts) 40
WAN_DEPTHS = {"1.3B": 30, "14B": 40}
CFG, SOURCE_CFG, TARGET_CFG = 5.0, 5.0, 10.0   # Wan's sample_guide_scale; FiVE's Wan-Edit: source 5, target 10


def wan_model(host, blocks: int) -> tuple:
    """The tiny random Wan 2.1 at ``blocks`` blocks (MODEL, CLIP)."""
    model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models("wan21", seed=0, double_blocks=blocks)
    return model, clip


def clip_latent(rows: int, frames: int) -> torch.Tensor:
    """``rows`` clips' latents of ``frames`` latent frames, 16 x 16, as the Wan VAE gives them."""
    return torch.randn(rows, 16, frames, 16, 16, generator=torch.Generator().manual_seed(0))


def measure_samplers(host, steps: int, blocks: int, frames: int) -> list[dict]:
    """Per model evaluation, the Flow Sampler's solvers, RF-Inversion's patch and Attention Store's recording policy
    against the stock euler sampler, ``ratio`` per evaluation."""
    model, clip = wan_model(host, blocks)
    target = encode(host, clip, TARGET)
    latent = clip_latent(1, frames)

    rows, per_step, euler = flow_sampler_rows(host, model, clip, target, latent, steps)
    from invertedit.hostkit.family import model_family
    from invertedit.hostkit.wan_attention import install_wan_policy
    from invertedit.techniques.attention_maps.store import MapRecorder, StoreCrossMaps

    recording = model.clone()
    install_wan_policy(recording, StoreCrossMaps(MapRecorder((16, 16), 8)), model_family(model).dit_blocks, "bench")
    rows.append(per_step(recording, lambda m, n: euler, "Attention Store's maps (every block's cross-attention)"))
    for row in rows:
        row["ratio"] = row["per_nfe"] / rows[0]["per_nfe"]
    return rows


def measure_flowedit(host, steps: int, blocks: int, frames: int) -> list[dict]:
    """Per step, FlowEdit (acting at every step, n_avg 1, cfg per prompt with the empty negative) against the host's
    CFGGuider at cfg 5 on a batch of 2 clips (the same 4 rows a step); ``ratio`` per step to stock."""
    model, clip = wan_model(host, blocks)
    source, target, empty = encode(host, clip, SOURCE), encode(host, clip, TARGET), encode(host, clip, "")
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    latent = clip_latent(1, frames)

    def stock(m, n):
        return call(host, "CFGGuider", model=m, positive=target, negative=empty, cfg=CFG)[0], euler

    def flowedit(m, n):
        return call(host, "InvertEditFlowEdit", model=m, source=source, target=target, source_guidance=SOURCE_CFG,
                    target_guidance=TARGET_CFG, n_max=2 * steps, n_min=0, n_avg=1, negative=empty)[0], euler

    rows = [custom_per_step(host, model, stock, latent.repeat(2, 1, 1, 1, 1), steps,
                            f"stock SamplerCustomAdvanced, 2 clips, cfg {CFG:g}"),
            custom_per_step(host, model, flowedit, latent, steps,
                            f"FlowEdit / Wan-Edit (every step, n_avg 1, cfg {SOURCE_CFG:g} / {TARGET_CFG:g})")]
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=WAN_DEPTHS["1.3B"])
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    name = f"demo-wan21 at {args.blocks} blocks, a clip of {args.frames} latent frames"
    print(nfe_table(measure_samplers(host, args.steps, args.blocks, args.frames), name, args.steps))
    print(table(measure_flowedit(host, args.steps, args.blocks, args.frames), name, args.steps, FLOWEDIT_CHAIN))


if __name__ == "__main__":
    main()
