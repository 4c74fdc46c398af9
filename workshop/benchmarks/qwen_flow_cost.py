"""Dispatched operations per model evaluation and per step of the flow methods on Qwen-Image at its real
depth (60 joint blocks at the tiny width: what a step dispatches grows with the blocks, not the width), against
the stock step, as ``dispatch_count`` counts them for Flux.1 and SD3 (issue 80).

    python -m workshop.benchmarks.qwen_flow_cost [--steps 4] [--blocks 60]

Per evaluation (cfg 1, the target prompt alone, as the flow inversions sample; a batch of 2): the Flow Sampler's
solvers, RF-Inversion's patch, Share Values (RF-Solver-Edit: the image tokens' values of the joint blocks, every
step, from block 0 and from the node's default 20) against the stock euler sampler. Per step: FlowEdit (acting at
every step, each prompt with its classifier-free guidance) against the host's CFGGuider on the same rows; the
source and the target of one token count (one call for the prompts, one for their negatives, as stock's two) and
of two (a call each: the host batches conds of one length only, and Qwen-Image's prompts are not padded).
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import (FLOWEDIT_CHAIN, SOURCE, TARGET, custom_per_step, flow_sampler_rows,
                                                nfe_table, table)
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode

#: Qwen-Image's blocks (``QwenImageTransformer2DModel``'s default ``num_layers``)
QWEN_DEPTH = 60
#: a target of another token count than SOURCE's (the words differ; Qwen2.5-VL's tokens are not padded)
LONGER = "a red circle and a blue square on green grass"
CFG = 4.0   # diffusers' QwenImagePipeline's true_cfg_scale


def qwen_model(host, blocks: int = QWEN_DEPTH) -> tuple:
    """The tiny random Qwen-Image at ``blocks`` joint blocks (MODEL, CLIP)."""
    model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models("qwen-image", seed=0, double_blocks=blocks)
    return model, clip


def latent_of(rows: int) -> torch.Tensor:
    """A 16x16 image latent of ``rows`` rows as Qwen-Image's VAE gives it (a frame axis of 1)."""
    return torch.randn(rows, 16, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def measure_samplers(host, steps: int, blocks: int = QWEN_DEPTH) -> list[dict]:
    """Per model evaluation, the Flow Sampler's solvers, RF-Inversion's patch and Share Values against the stock
    euler sampler (``dispatch_count.measure_flow_samplers``'s rows for Qwen-Image), ``ratio`` per evaluation."""
    model, clip = qwen_model(host, blocks)
    target = encode(host, clip, TARGET)
    latent = latent_of(2)

    rows, per_step, euler = flow_sampler_rows(host, model, clip, target, latent, steps)
    rf_solver = call(host, "InvertEditFlowSampler", solver="rf-solver")[0]
    for first in (0, 20):
        if first >= blocks:
            continue
        kept = {n: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=target,
                        solver="rf-solver", steps=n, scheduler="simple", guidance=1.0, share_steps=n,
                        share_from_block=first, keep_values_on="device")[0] for n in (steps, 2 * steps)}

        def shared(m, n, kept=kept):
            m = call(host, "InvertEditShareValues", model=m, inversion=kept[n])[0]
            return call(host, "BasicGuider", model=m, conditioning=target)[0], rf_solver

        which = "every joint block" if first == 0 else f"joint blocks {first} to {blocks - 1}, the node's default"
        row = custom_per_step(host, model, shared, latent, steps,
                              f"Share Values (every step, {which}; the image's values) + Flow Sampler rf-solver")
        rows.append(dict(row, per_nfe=row["ops"] / row["calls"]))
    for row in rows:
        row["ratio"] = row["per_nfe"] / rows[0]["per_nfe"]
    return rows


def measure_flowedit(host, steps: int, blocks: int = QWEN_DEPTH) -> list[dict]:
    """Per step, FlowEdit (acting at every step, n_avg 1, cfg per prompt with the empty negative) against the host's
    CFGGuider at cfg 4 on a batch of 2 (the same 4 rows a step: source and target, each with its negative), with a
    target of SOURCE's token count and one of another (``LONGER``); ``ratio`` per step to stock."""
    model, clip = qwen_model(host, blocks)
    source, empty = encode(host, clip, SOURCE), encode(host, clip, "")
    targets = {"same": encode(host, clip, TARGET), "other": encode(host, clip, LONGER)}
    assert targets["same"][0][0].shape[1] == source[0][0].shape[1] != targets["other"][0][0].shape[1]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    latent = latent_of(1)

    def stock(m, n):
        return call(host, "CFGGuider", model=m, positive=targets["same"], negative=empty, cfg=CFG)[0], euler

    def flowedit(target):
        def make(m, n):
            return call(host, "InvertEditFlowEdit", model=m, source=source, target=target, source_guidance=3.5,
                        target_guidance=13.5, n_max=2 * steps, n_min=0, n_avg=1, negative=empty)[0], euler
        return make

    rows = [custom_per_step(host, model, stock, latent.repeat(2, 1, 1, 1, 1), steps,
                            f"stock SamplerCustomAdvanced, batch 2, cfg {CFG:g}"),
            custom_per_step(host, model, flowedit(targets["same"]), latent, steps,
                            "FlowEdit (every step, n_avg 1), source and target of one token count"),
            custom_per_step(host, model, flowedit(targets["other"]), latent, steps,
                            "FlowEdit (every step, n_avg 1), source and target of two token counts")]
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=QWEN_DEPTH)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    name = f"demo-qwen-image at {args.blocks} blocks"
    print(nfe_table(measure_samplers(host, args.steps, args.blocks), name, args.steps))
    print(table(measure_flowedit(host, args.steps, args.blocks), name, args.steps, FLOWEDIT_CHAIN))


if __name__ == "__main__":
    main()
