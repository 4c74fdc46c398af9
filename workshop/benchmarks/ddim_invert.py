"""DDIM Invert: its cost against a stock sampling run of the same steps, and how well the
stock sampler reconstructs the source from the inverted latent.

    python -m workshop.benchmarks.ddim_invert [--families sd1,sd2-v,sdxl] [--repeats 5] [--size 16]

Prints two markdown tables. Costs are counts (UNet calls) and a wall-time ratio measured
side by side in one process (runs interleaved, median of each), never absolute times.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from workshop.headless.boot import boot
from workshop.headless.calls import builtin_model, call, encode, reconstruct, rel_err

PROMPT = "a red circle on a blue background"


def counted(model):
    """A clone of ``model`` that counts UNet calls (and batch rows) in ``clone.calls``."""
    m = model.clone()
    m.calls = []

    def wrapper(apply_model, args):
        m.calls.append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    m.set_model_unet_function_wrapper(wrapper)
    return m


def invert(host, model, latent, positive, steps):
    return call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=positive, steps=steps,
                scheduler="ddim_uniform", start_at_step=0, cfg=1.0)


def cost(host, tiny, family, size, steps, repeats):
    model, clip, _ = tiny(family)
    pos = encode(host, clip, PROMPT)
    src = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5}
    m = counted(model)
    _, lat, _ = invert(host, m, src, pos, steps)
    n_inv, rows_inv = len(m.calls), sum(m.calls)
    m.calls.clear()
    reconstruct(host, m, lat, pos, steps=steps)
    n_smp, rows_smp = len(m.calls), sum(m.calls)
    t_inv, t_smp = [], []
    for _ in range(repeats):     # interleaved, so load on the machine hits both alike
        t0 = time.perf_counter(); invert(host, model, src, pos, steps); t_inv.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); reconstruct(host, model, lat, pos, steps=steps); t_smp.append(time.perf_counter() - t0)
    return n_inv, rows_inv, n_smp, rows_smp, statistics.median(t_inv) / statistics.median(t_smp)


def reconstruction(host, tiny, family, size, steps, cfg):
    model, clip, _ = tiny(family)
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    src = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5}
    _, lat, _ = invert(host, model, src, pos, steps)
    out = reconstruct(host, model, lat, pos, neg, steps=steps, cfg=cfg)
    return rel_err(out, src["samples"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="sd1,sd2-v,sdxl")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=16, help="latent height/width (16 = a 128 px image)")
    ap.add_argument("--steps", type=int, default=50, help="steps of the cost comparison")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    import tempfile
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    cache = {}

    def tiny(family):
        if family not in cache:
            cache[family] = builtin_model(host, f"demo-{family}")
        return cache[family]

    families = args.families.split(",")
    print(f"\n### DDIM Invert vs a stock KSamplerAdvanced run, {args.steps} steps, {args.size}x{args.size} latent, "
          f"tiny seeded models, 1 CPU thread, median of {args.repeats}\n")
    print("| model | UNet calls: invert | UNet calls: sample | batch rows: invert / sample | wall time invert / sample |")
    print("|---|---|---|---|---|")
    for f in families:
        n_inv, r_inv, n_smp, r_smp, ratio = cost(host, tiny, f, args.size, args.steps, args.repeats)
        print(f"| {f} | {n_inv} | {n_smp} | {r_inv} / {r_smp} | {ratio:.2f} |")

    print("\n### Latent reconstruction error (relative L2) of inversion at cfg 1, sampled back with ddim at cfg 1 and "
          "7.5 (negative: empty prompt)\n")
    print("| model | cfg | 10 steps | 25 steps | 50 steps |")
    print("|---|---|---|---|---|")
    for f in families:
        for cfg in (1.0, 7.5):
            errs = [reconstruction(host, tiny, f, args.size, s, cfg) for s in (10, 25, 50)]
            print(f"| {f} | {cfg:g} | " + " | ".join(f"{e:.4f}" for e in errs) + " |")


if __name__ == "__main__":
    main()
