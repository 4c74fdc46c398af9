"""Dispatched torch operations per sampling step of Cross-View Attention on a flow transformer (issue 83,
``hostkit/dit_views.py``): a view set of V views sampled by the stock euler sampler (and FlowEdit's guider) with and
without the alignment, R references, on the tiny random Flux.1 / SD3 (at a real model's depth with --real-depth:
what a step dispatches grows with the blocks, not the width). Counted as ``dispatch_count`` counts (every aten
operation, the difference of two runs per step), so the figures are exact and repeatable: a count, not a time.

    python -m workshop.benchmarks.flow_views_cost [--family flux-dev|sd3] [--views 4] [--steps 4] [--real-depth]
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import custom_per_step, flow_models
from workshop.headless.calls import call, encode

MEAN, EXTENDED = "mean of references (GaussCtrl)", "extended keys (one softmax)"
SOURCE, TARGET = "a red circle and a blue square", "a yellow circle and a blue square"


def measure(host, family: str = "flux-dev", views: int = 4, steps: int = 4, real_depth: bool = False) -> list[dict]:
    """Per step: stock euler (BasicGuider; SD3: CFGGuider cfg 3.5) on V views, then with Cross-View Attention at R
    = 1, 2 and V references (mean) and V (extended keys); FlowEdit acting at every step without and with R = V.
    Each row's ``ratio``: its ops over its baseline's (stock, or FlowEdit without the alignment)."""
    model, clip = flow_models(host, family, real_depth)
    flux = family.startswith("flux")
    latent = torch.randn(views, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    target, source, empty = encode(host, clip, TARGET), encode(host, clip, SOURCE), encode(host, clip, "")
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def aligned(m, references: int, mode: str = MEAN):
        return call(host, "InvertEditCrossViewAttention", model=m, latent={"samples": latent}, references=references,
                    self_weight=0.6, mode=mode, reference_views="")[0]

    def stock_guider(m):
        if flux:
            return call(host, "BasicGuider", model=m, conditioning=target)[0]
        return call(host, "CFGGuider", model=m, positive=target, negative=empty, cfg=3.5)[0]

    def flowedit(m):
        kw = dict(source_guidance=1.5, target_guidance=5.5) if flux else dict(
            source_guidance=3.5, target_guidance=13.5, negative=empty)
        return call(host, "InvertEditFlowEdit", model=m, source=source, target=target, n_max=4 * steps, n_min=0,
                    n_avg=1, **kw)[0]

    def row(label: str, guide, patch=None) -> dict:
        return custom_per_step(host, model, lambda m, n: (guide(patch(m) if patch else m), euler), latent, steps, label)

    rows = [row(f"stock euler, {views} views", stock_guider)]
    for r in (1, 2, views):
        rows.append(row(f"+ Cross-View Attention, R = {r} (mean)", stock_guider, lambda m, r=r: aligned(m, r)))
    rows.append(row(f"+ Cross-View Attention, R = {views} (extended keys)", stock_guider,
                    lambda m: aligned(m, views, EXTENDED)))
    for r in rows:
        r["ratio"] = r["ops"] / rows[0]["ops"]
    edit = [row(f"FlowEdit, {views} views", flowedit),
            row(f"FlowEdit + Cross-View Attention, R = {views} (mean)", flowedit, lambda m: aligned(m, views))]
    for r in edit:
        r["ratio"] = r["ops"] / edit[0]["ops"]
    return rows + edit


def table(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "", "| run | ops / step | x baseline | model calls / step | rows a call |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:.0f} | {r['ratio']:.2f} | {r['calls']:g} | {r['rows']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="flux-dev", choices=("flux-dev", "sd3"))
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--real-depth", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from workshop.headless.boot import boot

    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-flow-views-cost-"))
    rows = measure(host, args.family, args.views, args.steps, args.real_depth)
    depth = " (a real model's depth)" if args.real_depth else ""
    print(table(rows, f"Cross-View Attention on the tiny {args.family}{depth}, {args.views} views, per step"))


if __name__ == "__main__":
    main()
