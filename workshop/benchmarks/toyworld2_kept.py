"""Why an edit loses the other object (issue 29): world 2's cases through Direct Inversion +
Prompt-to-Prompt (the benchmark's row: replace, refine for drops; cross 0.8) at self-attention
injection 0.4 (the paper's), 0.8 and 1.0, with each failure of "other kept" sorted by what the judge
reads of the kept object.

    python -m workshop.benchmarks.toyworld2_kept [--cases 30] [--steps 10]

Per self-attention setting: the whole-case, edit-success and other-kept rates (as the world-2
benchmark counts them), and the kept objects that fail, as
- drift: found with its colour and shape, its centre within 10 px, but off by more than the
  benchmark's 3 px or 10% of its size;
- moved or changed: its centre over 10 px away, or another shape;
- missing: no object of its colour;
and the edits whose picture has more objects than the target (an object added). Run it on another
model by copying that model's files over ``models/toyworld2/`` in a separate checkout (as the
candidate's benchmark was run).
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import Counter

import torch

from workshop.benchmarks.toyworld import decode
from workshop.benchmarks.toyworld2 import case_metrics, p2p, setup_case
from workshop.headless.boot import boot
from workshop.headless.calls import encode
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import judge

SELF = (0.4, 0.8, 1.0)


def failure(obj: S.Obj, reading) -> str | None:
    """How the judge's reading loses the kept object ``obj`` (None: kept)."""
    found = reading.find(obj.colour)
    if found is None:
        return "missing"
    if found.matches(obj):
        return None
    if found.shape != obj.shape or math.hypot(found.cx - obj.cx, found.cy - obj.cy) > 10:
        return "moved or changed"
    return "drift"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cfg", type=float, default=5.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    host = boot()
    model, clip, vae = host.pack.demo.toy_model.load_toy_model(host.pack.demo.toy_model.WORLD_2)
    empty = encode(host, clip, "")
    edits = {s: p2p(args.cfg, self_replace=s) for s in SELF}
    rates = {s: Counter() for s in SELF}
    lost = {s: Counter() for s in SELF}
    added = {s: Counter() for s in SELF}
    cases = S.edit_cases(100, seed=0)[:args.cases]
    for done, case in enumerate(cases):
        ctx, _, tgt_img, outside, region = setup_case(host, model, clip, vae, args.steps, empty, case)
        for s, edit in edits.items():
            out, rec = edit(ctx)
            out_img = decode(host, vae, out)
            metrics = case_metrics(case, True, out_img, decode(host, vae, rec), tgt_img, outside, region, None)
            rates[s].update({k: metrics[k] for k in ("case", "success", "kept")})
            reading = judge(out_img)
            for k in case.kept:
                why = failure(case.source.objects[k], reading)
                if why:
                    lost[s][(case.kind, why)] += 1
            if len(reading.objects) > len(case.target.objects):
                added[s][case.kind] += 1
        print(f"  case {done + 1}/{len(cases)}", file=sys.stderr, flush=True)
    n = len(cases)
    kinds = Counter(case.kind for case in cases)
    lines = [f"World 2, the first {n} benchmark cases ({', '.join(f'{k} {v}' for k, v in kinds.items())}), Direct "
             f"Inversion + Prompt-to-Prompt, {args.steps} steps, cfg {args.cfg:g}:", "",
             "| self-attention injection | whole case | edit success | other kept | kept object lost: drift / moved or "
             "changed / missing | of them in background edits + drops | an object added (background edits) |",
             "|---|---|---|---|---|---|---|"]
    for s in SELF:
        why = Counter()
        for (kind, w), c in lost[s].items():
            why[w] += c
        bg_drop = sum(c for (kind, _), c in lost[s].items() if kind in ("background", "drop"))
        lines.append(f"| {s:g} | {100 * rates[s]['case'] / n:.0f}% | {100 * rates[s]['success'] / n:.0f}% | "
                     f"{100 * rates[s]['kept'] / n:.0f}% | {why['drift']} / {why['moved or changed']} / {why['missing']} | "
                     f"{bg_drop} | {sum(added[s].values())} ({added[s]['background']}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
