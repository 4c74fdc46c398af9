"""What a view-set edit costs per view against stock sampling of the same views (issue 83): dispatched
operations and multiply-adds per sampling step, counted on a built-in model (``clip_cost``'s counters: a
stock KSampler (Advanced) at cfg 7.5, per step = (run of 2n steps - run of n) / n), and the self-attention
multiply-adds of Cross-View Attention computed at SD1.5's width.

    python -m workshop.benchmarks.view_cost [--model demo-sd1|toy-one-object|...] [--views 4] [--steps 5]

Computed: at SD1.5 512 px (``clip_cost.SD15_LEVELS``), a self-attention layer of N tokens and C channels
costs per view ``2 N^2 C`` multiply-adds (scores and values) and ``4 N C^2`` (projections). GaussCtrl's
alignment adds one attention per reference view on the projected keys and values (``2 R N^2 C``; no
projection added: the keys are projected once, the references' rows gathered after), and holds, during
the call, R copies of the view's queries and R attention outputs (``2 R N C`` values per view); "extended
keys" attends over (R + 1) N keys in one softmax (the same multiply-adds; it holds the R references' keys
and values, ``2 R N C``).
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.clip_cost import PAIR_EDITORS, SD15_LEVELS, SOURCE, TARGET, inverted_set, step_counter
from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

MODES = ("mean of references (GaussCtrl)", "extended keys (one softmax)")


def measure(host, model, clip, views: int, steps: int, side: int = 16, cfg: float = 7.5, refs: int = 4) -> list[dict]:
    source, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    inverted = inverted_set(host, model, source, views, steps, side)
    per_step = step_counter(host, neg, steps, cfg)

    def aligned(m, n, mode=MODES[0]):
        return call(host, "InvertEditCrossViewAttention", model=m, latent=inverted[n][1], references=refs,
                    self_weight=0.6, mode=mode, reference_views="")[0]

    def pair(node, kw, mode):
        def make(n):
            direct, lat = inverted[n]
            m, cond, pair_lat = call(host, node, model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                                     target_prompt=TARGET, **kw)
            m = aligned(m, n, mode) if mode else m
            return call(host, "InvertEditApplyInversion", model=m, inversion=direct)[0], cond, pair_lat
        return make

    r = min(refs, views)
    rows = [per_step(f"stock KSampler, the set's {views} views", lambda n: (model, source, inverted[n][1]))]
    for mode in MODES:
        rows.append(per_step(f"Cross-View Attention alone, {views} views ({mode}, {r} references)",
                             lambda n, mode=mode: (aligned(model, n, mode), source, inverted[n][1])))
    for label, (node, kw) in PAIR_EDITORS.items():
        rows.append(per_step(f"{label}, view by view ({2 * views} rows)", pair(node, kw, None)))
        rows.append(per_step(f"{label} + Cross-View Attention (GaussCtrl, {2 * views} rows)", pair(node, kw, MODES[0])))
    for row in rows:
        row["ops_ratio"], row["macs_ratio"] = row["ops"] / rows[0]["ops"], row["macs"] / rows[0]["macs"]
    return rows


def sd15_attention(refs: int) -> tuple[float, float]:
    """(self-attention GMAC per view and UNet row at SD1.5 512 px with ``refs`` references, stock's)."""
    def layer(n: int, c: int, r: int) -> float:
        return 2 * (1 + r) * n * n * c + 4 * n * c * c
    return (sum(b * layer(n, c, refs) for n, c, b in SD15_LEVELS) / 1e9,
            sum(b * layer(n, c, 0) for n, c, b in SD15_LEVELS) / 1e9)


def table(rows: list[dict], name: str, views: int, steps: int, side: int = 16) -> str:
    lines = [f"\n### A view-set edit's cost per step, model '{name}', {views} views of a {side}x{side} latent, cfg 7.5, "
             f"per step = (run of {2 * steps} steps - run of {steps}) / {steps}\n",
             "| run | aten ops / step | per output view | vs stock | multiply-adds / step | per output view | vs stock |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['ops'] / views:,.0f} | {r['ops_ratio']:.2f}x "
                     f"| {r['macs'] / 1e6:,.1f} M | {r['macs'] / views / 1e6:,.2f} M | {r['macs_ratio']:.2f}x |")
    lines += ["\n### Self-attention (attn1) multiply-adds per view and UNet row at SD1.5 512 px (computed)\n",
              "| references R | attn1 GMAC / view | vs stock attn1 | held during the largest layer's call (one row, fp16) |",
              "|---|---|---|---|"]
    for refs in (0, 1, 2, 4):
        total, plain = sd15_attention(refs)
        held = "none" if refs == 0 else f"{2 * refs * 4096 * 320 * 2 / 2**20:.1f} MiB (R queries + R outputs)"
        lines.append(f"| {refs if refs else 'stock (own view)'} | {total:.1f} | {total / plain:.2f}x | {held} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    model, clip, _ = builtin_model(host, args.model)
    print(table(measure(host, model, clip, args.views, args.steps), args.model, args.views, args.steps))


if __name__ == "__main__":
    main()
