"""TokenFlow's cost per sampling step against stock sampling of the same frames (issue 82):
dispatched torch operations, UNet calls and their rows, device waits, counted as
``workshop.benchmarks.dispatch_count`` counts them (every aten op under a ``TorchDispatchMode``:
a count, not a time; per step = (run of 2N steps - run of N) / N).

    python -m workshop.benchmarks.tokenflow_cost [--model demo-sd1|toy|toy-one-object] [--frames 8] [--steps 3]

Each run: DDIM Invert of F random frames (cfg 1), then stock KSampler (Advanced) at cfg 7.5 (ddim) on
the inverted LATENT: through Apply Inversion alone (stock: every frame edited on its own, one UNet
call of 2F rows per step), or through TokenFlow at several batch sizes (two UNet calls per step:
the keyframes' pass of 3F/b rows and the propagation's of 3F rows, each with the source's rows).
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import OpCounter, counted_model
from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

SOURCE, TARGET = "a red circle and a blue square", "a yellow circle and a blue square"


def measure(host, model, clip, frames: int, steps: int, batch_sizes: tuple[int, ...], side: int = 16) -> list[dict]:
    latent = {"samples": torch.randn(frames, 4, side, side, generator=torch.Generator().manual_seed(0)) * 5.0}
    source, target, neg = encode(host, clip, SOURCE), encode(host, clip, TARGET), encode(host, clip, "")
    inverted = {n: call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=source, steps=n,
                        scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[:2] for n in (steps, 2 * steps)}

    def run(make, n) -> tuple:
        inv, lat = inverted[n]
        m, calls = counted_model(make(inv))
        with OpCounter() as counter:
            call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=n, cfg=7.5,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=target, negative=neg, latent_image=lat,
                 start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
        return counter.total, counter.syncs, calls

    def per_step(make, label: str) -> dict:
        (ops1, syncs1, calls1), (ops2, syncs2, calls2) = (run(make, n) for n in (steps, 2 * steps))
        ops = (ops2 - ops1) / steps
        return {"label": label, "ops": ops, "once": ops1 - ops * steps, "syncs": (syncs2 - syncs1) / steps,
                "calls": (len(calls2) - len(calls1)) / steps, "rows": sorted(set(calls1 + calls2))}

    rows = [per_step(lambda inv: call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0],
                     f"stock KSampler, {frames} frames (frame by frame)")]
    for b in batch_sizes:
        rows.append(per_step(lambda inv, b=b: call(host, "InvertEditTokenFlow", model=model, inversion=inv,
                                                   source=source, batch_size=b, self_attention_injection=0.5,
                                                   feature_injection=0.8, seed=1)[0],
                             f"TokenFlow, batch_size {b} ({-(-frames // b)} keyframes)"))
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


def table(rows: list[dict], name: str, frames: int, steps: int) -> str:
    lines = [f"\n### TokenFlow: dispatched operations per sampling step, model '{name}', {frames} frames, 16x16 latent, "
             f"cfg 7.5, per step = (run of {2 * steps} steps - run of {steps}) / {steps}\n",
             "| run | aten ops / step | vs stock | UNet calls / step (rows per call) | device waits / step | ops once per run |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['ratio']:.2f}x | {r['calls']:.1f} "
                     f"({', '.join(map(str, r['rows']))}) | {r['syncs']:.1f} | {r['once']:,.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(parser)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit_tokenflow_cost_"))
    model, clip, _ = builtin_model(host, args.model)
    batch_sizes = tuple(b for b in (8, 4, 2, 1) if b <= args.frames)
    print(table(measure(host, model, clip, args.frames, args.steps, batch_sizes), args.model, args.frames, args.steps))


if __name__ == "__main__":
    main()
