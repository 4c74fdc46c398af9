"""SEGA Guidance's cost per concept, as a ratio to plain CFG sampling measured side by side.

    python -m workshop.benchmarks.sega_cost [--model toy-one-object|demo-sd1|demo-sdxl] [--steps 30] [--repeats 5]

SEGA evaluates the prompt, the negative and n concepts in one batched UNet call a step: the
expected cost is (2 + n) / 2 of CFG's two rows. UNet rows are counted; wall time is the
median of interleaved runs.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

CONCEPTS = ["a green square", "a yellow background", "a white triangle", "a black circle"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    name = args.model
    model, clip, _ = builtin_model(host, name)
    rows = [0]
    counted = model.clone()
    counted.set_model_unet_function_wrapper(
        lambda apply, a: (rows.__setitem__(0, rows[0] + a["input"].shape[0]), apply(a["input"], a["timestep"], **a["c"]))[1])
    pos, neg = encode(host, clip, "a red circle on a blue background"), encode(host, clip, "")
    empty = {"samples": torch.zeros(1, 4, 16, 16)}
    sigmas = call(host, "BasicScheduler", model=model, scheduler="ddim_uniform", steps=args.steps, denoise=1.0)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="ddim")[0]

    def run(guider):
        return call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=0)[0], guider=guider,
                    sampler=sampler, sigmas=sigmas, latent_image=empty)

    def guider(n):
        if n == 0:
            return call(host, "CFGGuider", model=counted, positive=pos, negative=neg, cfg=7.5)[0]
        chain = None
        for text in CONCEPTS[:n]:
            chain = call(host, "InvertEditSEGAConcept", conditioning=encode(host, clip, text), direction="add", scale=5.0,
                         warmup=10, cooldown=0, threshold=0.9, weight=1.0, concepts=chain)[0]
        return call(host, "InvertEditSEGAGuidance", model=counted, positive=pos, negative=neg, cfg=7.5, concepts=chain,
                    momentum_scale=0.1, momentum_beta=0.4)[0]

    guiders = {n: guider(n) for n in range(4)}
    times = {n: [] for n in guiders}
    counts = {}
    for _ in range(args.repeats):
        for n, g in guiders.items():
            rows[0] = 0
            t0 = time.perf_counter()
            run(g)
            times[n].append(time.perf_counter() - t0)
            counts[n] = rows[0]
    base = statistics.median(times[0])
    print(f"\n### SEGA cost vs plain CFG, model '{name}', 16x16 latent, {args.steps} steps, 1 CPU thread, "
          f"median of {args.repeats}\n")
    print("| concepts | UNet rows | rows / CFG's | expected (2 + n) / 2 | wall time / CFG's |")
    print("|---|---|---|---|---|")
    for n in guiders:
        print(f"| {n} | {counts[n]} | {counts[n] / counts[0]:.2f} | {(2 + n) / 2:.2f} | {statistics.median(times[n]) / base:.2f} |")


if __name__ == "__main__":
    main()
