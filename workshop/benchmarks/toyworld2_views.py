"""The toy view-set benchmark (issue 83): world 2's edits applied to one scene seen from shifted
cameras, read view by view by the exact judge, through the real nodes and the Toy World Models.

    python -m workshop.benchmarks.toyworld2_views [--sets 8] [--views 4] [--steps 10] [--cfg 5]
        [--flow-steps 28] [--vertical 4] [--rows WORD,WORD] [--seed 0] [--json out.json] [--threads 1]
        [--save DIR] [--cost-steps 3]
    python -m workshop.benchmarks.toyworld2_views --merge a.json b.json [--json all.json]
        (the table of files that ran other rows of the same view sets)

View sets (``toyworld.views.view_edit_cases``): the still benchmark's edit cases (``scenes.edit_cases``,
same seed: an object's colour, its shape, the background, dropping an object, in turn), each scene
seen by ``--views`` cameras shifted sideways 12-24 px a view (and up or down by at most
``--vertical`` px), each object moving by the parallax of its depth (1-3; the background, far, does
not move), every view inside and apart; the edit applies to every view, whose exact answer is
rendered. Each row edits the whole set; ``toyworld.views.view_metrics`` (the clip judge's
``clip_metrics``) reads every view:

- edit success   per view, averaged (colour / shape / bg / drop: per kind); "all views": the sets whose
                 edit succeeds in every view; "by view": per view index, over the sets.
- other kept     per view, averaged (colour, shape, centre within 3 px, size within 10%).
- bg PSNR        per view outside every object against the exact target view, averaged (dB).
- agreement      the sets whose edited object (background; a drop: its absence) reads the same colour
                 and shape in every view, right or wrong; "agreeing views": the share of views reading
                 their set's most common reading.
- size spread    colour/shape edits: (largest - smallest) / mean of the edited object's read size over
                 the views (mean over the sets where it is read in every view).
- s / set        seconds per view set of the row's edit; the SD rows' shared DDIM inversion (with Direct
                 Inversion's record) is timed apart, once a set, and said under the table.
- cost / view    dispatched aten operations per sampling step per output view against stock sampling of
                 the same views (``dispatch_count.OpCounter``; per step = (run of 2n steps - run of n) / n,
                 n = ``--cost-steps``; counted once, on the same models at 128 px: a count of dispatched
                 operations does not depend on the picture's size, and a GPU step is bound by issuing them).
                 SD stock: KSampler (Advanced) at ``--cfg`` on the V inverted views; flow stock: the host's
                 BasicGuider with euler on the V views (one row a view). A pair editor's 2V rows count
                 against stock's V; "view by view" runs of one view count V runs against one.

Rows (world 2's model, 512 px; DDIM ``--steps`` steps, ddim_uniform, cfg ``--cfg``):
0. Stock: the views' DDIM inversion sampled with the target prompt (KSampler, no editor): the naive
   edit, and the time and cost reference.
1. View by view: the still benchmark's Direct inversion + Prompt-to-Prompt (replace, refine for a drop;
   cross 0.8, self 0.4) on the views as one batch (one inversion, one sampling run, no attention
   across views).
2. Cross-View Attention, "mean of references (GaussCtrl)" (the node's defaults, the paper's: self weight
   0.6, 4 references) on the pair's model + the same Direct + P2P.
3. Cross-View Attention, "extended keys (one softmax)" (4 references) + the same.
On the toy flow model ("two objects, flow DiT", 256 px; the shipped FlowEdit workflow's Flux settings:
``--flow-steps`` 28, n_max 24, guidance 1.5 / 5.5, euler, ModelSamplingFlux at 256 px, RandomNoise seed 0):
4. FlowEdit view by view: one run per view (the same seed for every view, as a user running the still
   workflow once per view).
5. FlowEdit batched: one run over the views (no attention across views; RandomNoise draws the batch's noise).
6. FlowEdit + Cross-View Attention (mean of references, its defaults) on the flow model, one run.
A row whose node is not in the pack (yet), or refuses the model, is skipped with a printed line saying so.
The helpers are the clip benchmark's (``toyworld2_clips``): a view set is a clip's shape.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from workshop.benchmarks import toyworld2_clips as B
from workshop.benchmarks.dispatch_count import OpCounter, counted_model, custom_per_step
from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld import views as V

COST_RES = 128   # the cost count's picture side (the count does not depend on it)
CROSS_VIEW = ("CrossView",)
VAE_ROW = {"sd": "(VAE round trip of the source views, world 2's model)",
           "flow": "(VAE round trip of the source views, toy flow model)"}


def cross_view_node(host, label: str) -> str:
    node = B.find_node(host, *CROSS_VIEW)
    if node is None:
        raise B.Skip(f"{label}: no InvertEditCrossViewAttention node in the pack yet")
    return node


def mode_option(host, node: str, word: str) -> str:
    """The node's ``mode`` option naming ``word`` ("mean", "extended")."""
    typ, opts, _ = B.node_inputs(host, node)["mode"]
    options = typ if isinstance(typ, list) else opts.get("options", [])   # a V1 combo's list, a V3 COMBO's options
    for o in options:
        if word in o:
            return o
    raise B.Skip(f"{node}: no mode naming '{word}' (its modes: {options})")


def cross_view(mode_word: str, label: str):
    """``given(ctx)`` of ``toyworld2_clips.consistency_row``: the Cross-View node's mode (the rest at its defaults)."""
    def given(ctx):
        return {"mode": mode_option(ctx["host"], cross_view_node(ctx["host"], label), mode_word)}
    return given


def cross_view_sd(mode_word: str, label: str):
    run = B.consistency_row(CROSS_VIEW, label, given=cross_view(mode_word, label))

    def row(ctx):
        cross_view_node(ctx["host"], label)   # the node's absence said in this row's words
        return run(ctx)
    return row


def stock(ctx):
    """Row 0: the views' DDIM inversion (source prompt, cfg 1) sampled with the target prompt, no editor."""
    inv, lat, direct = B.inversions(ctx, "batch", ctx["latent"])
    return B.sample(ctx, ctx["model"], lat, ctx["tgt"]), "one batched run"


def flowedit_cross_view(ctx):
    """Row 6: FlowEdit over the views as one batch, its model through the Cross-View node (mean of references)."""
    host, label = ctx["host"], "FlowEdit + Cross-View Attention"
    node = cross_view_node(host, label)
    try:
        m = B.call_with_defaults(host, node, {"MODEL": ctx["model"], "LATENT": ctx["latent"],
                                              "mode": mode_option(host, node, "mean")})[0]
        out = B.flowedit({**ctx, "model": m}, ctx["latent"])
    except B.refusal(host) as e:
        raise B.Skip(f"{label}: refused on the flow model ({str(e)[:200]})") from None
    return out, "one batched run"


def rows(cfg: float, steps: int, flow_steps: int) -> list[tuple[str, str, object, str]]:
    """(row name, model "sd" | "flow", function(ctx) -> (LATENT samples of the V edited views, how it ran),
    cost key)."""
    p2p = f"Direct inversion + P2P (replace, refine for drops; cross 0.8, self 0.4; DDIM {steps} steps, cfg {cfg:g})"
    fe = f"FlowEdit ({flow_steps} steps, n_max 24, guidance 1.5 / 5.5; toy flow DiT, 256 px)"
    return [
        (f"Stock: DDIM inversion ({steps} steps) + the target prompt, no editor (cfg {cfg:g})", "sd", stock, "stock"),
        (f"View by view: {p2p}", "sd", B.frame_by_frame, "p2p"),
        (f"Cross-View Attention (mean of references, GaussCtrl: self 0.6, 4 references) + {p2p}", "sd",
         cross_view_sd("mean", "Cross-View Attention (mean)"), "p2p+mean"),
        (f"Cross-View Attention (extended keys, one softmax; 4 references) + {p2p}", "sd",
         cross_view_sd("extended", "Cross-View Attention (extended keys)"), "p2p+extended"),
        (f"{fe}, view by view", "flow", B.flowedit_per_frame, "fe1"),
        (f"{fe}, batched", "flow", B.flowedit_batched, "fe"),
        (f"{fe} + Cross-View Attention (mean of references, self 0.6, 4 references), batched", "flow",
         flowedit_cross_view, "fe+mean"),
    ]


# ---------------------------------------------------------------------------------------------
# Cost per view against stock sampling (dispatched operations per step)
# ---------------------------------------------------------------------------------------------

def ksampler_per_step(host, make, steps: int, negative, cfg: float) -> dict:
    """Dispatched ops and UNet calls per step of a stock KSampler (Advanced) run of ``make(n) -> (model,
    positive, LATENT)`` (no noise added), as (run of 2n steps - run of n) / n; a first run loads the model."""
    def run(n):
        m, cond, lat = make(n)
        m, calls = counted_model(m)
        with OpCounter() as counter:
            call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=n, cfg=cfg,
                 sampler_name="ddim", scheduler=B.SCHEDULER, positive=cond, negative=negative, latent_image=lat,
                 start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
        return counter.total, len(calls)

    run(steps)
    (o1, c1), (o2, c2) = run(steps), run(2 * steps)
    return {"ops": (o2 - o1) / steps, "calls": (c2 - c1) / steps}


def sd_costs(host, models, views: int, steps: int, cfg: float, keys: set[str]) -> dict[str, float]:
    """Per output view and step, each SD row's dispatched ops against stock's (see the module)."""
    model, clip, vae = models
    vs = V.view_edit_cases(1, views=views)[0]
    images, _ = V.render_views(vs.views, COST_RES)
    latent = call(host, "VAEEncode", pixels=images, vae=vae)[0]
    src, tgt, empty = (encode(host, clip, t) for t in (vs.source_caption, vs.target_caption, ""))
    inverted = {}
    for n in (steps, 2 * steps):
        inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=src, steps=n,
                           scheduler=B.SCHEDULER, start_at_step=0, cfg=1.0)
        inverted[n] = (inv, lat, call(host, "InvertEditDirectInversion", inversion=inv)[0])

    def pair(mode_word=None):
        def make(n):
            inv, lat, direct = inverted[n]
            m, cond, pair_lat = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat,
                                     source_prompt=vs.source_caption, target_prompt=vs.target_caption,
                                     mode="replace", **B.P2P_KW)
            if mode_word is not None:
                node = cross_view_node(host, "cost")
                m = B.call_with_defaults(host, node, {"MODEL": m, "LATENT": lat,
                                                      "mode": mode_option(host, node, mode_word)})[0]
            return call(host, "InvertEditApplyInversion", model=m, inversion=direct)[0], cond, pair_lat
        return make

    makers = {"stock": lambda n: (model, tgt, inverted[n][1]), "p2p": pair(), "p2p+mean": pair("mean"),
              "p2p+extended": pair("extended")}
    out = {}
    base = ksampler_per_step(host, makers["stock"], steps, empty, cfg)["ops"] / views
    for key in sorted(keys & set(makers)):
        try:
            out[key] = ksampler_per_step(host, makers[key], steps, empty, cfg)["ops"] / views / base
        except (B.Skip, B.refusal(host)) as e:
            print(f"  no cost of {key}: {str(e)[:200]}", file=sys.stderr, flush=True)
    return out


def flow_costs(host, models, views: int, steps: int, keys: set[str]) -> dict[str, float]:
    """Per output view and step, each flow row's dispatched ops against stock's (see the module)."""
    model, clip, vae = models
    vs = V.view_edit_cases(1, views=views)[0]
    images, _ = V.render_views(vs.views, COST_RES)
    latent = call(host, "VAEEncode", pixels=images, vae=vae)[0]["samples"]
    shifted = call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=COST_RES,
                   height=COST_RES)[0]
    src, tgt = encode(host, clip, vs.source_caption), encode(host, clip, vs.target_caption)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    settings = dict(B.FLOWEDIT, n_max=2 * steps)   # acting at every step of both runs

    def flowedit(m, cross: bool):
        if cross:
            node = cross_view_node(host, "cost")
            m = B.call_with_defaults(host, node, {"MODEL": m, "LATENT": {"samples": latent},
                                                  "mode": mode_option(host, node, "mean")})[0]
        return call(host, "InvertEditFlowEdit", model=m, source=src, target=tgt, **settings)[0]

    def per_view(make, lat) -> float:
        return custom_per_step(host, shifted, lambda m, n: (make(m), euler), lat, steps, "")["ops"] / lat.shape[0]

    base = per_view(lambda m: call(host, "BasicGuider", model=m, conditioning=tgt)[0], latent)
    makers = {"fe1": (lambda m: flowedit(m, False), latent[:1]),   # a run of one view per view
              "fe": (lambda m: flowedit(m, False), latent), "fe+mean": (lambda m: flowedit(m, True), latent)}
    out = {}
    for key in sorted(keys & set(makers)):
        make, lat = makers[key]
        try:
            out[key] = per_view(make, lat) / base
        except (B.Skip, B.refusal(host)) as e:
            print(f"  no cost of {key}: {str(e)[:200]}", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------

def run_views(host, args) -> dict:
    from invertedit.demo.worlds import WORLD_2, WORLD_FLOW
    toy = host.pack.demo.toy_model
    wanted = [w.strip() for w in args.rows.split(",") if w.strip()]
    chosen = [r for r in rows(args.cfg, args.steps, args.flow_steps) if not wanted or any(w in r[0] for w in wanted)]
    kinds_needed = {k for _, k, _, _ in chosen}
    models = {k: toy.load_toy_model(WORLD_2 if k == "sd" else WORLD_FLOW) for k in kinds_needed}
    cases = V.view_edit_cases(args.sets, seed=args.seed, views=args.views, vertical=args.vertical)
    skipped: dict[str, str] = {}
    out_sets, t0 = [], time.time()
    for i, vc in enumerate(cases):
        record = {"i": i, "kind": vc.kind, "rows": {}, "how": {}}
        ctxs = {}
        for k in sorted(kinds_needed):
            ctxs[k] = (B.sd_context(host, models[k], vc, args.steps, args.cfg, vc.views.scenes()) if k == "sd"
                       else B.flow_context(host, models[k], vc, args.flow_steps, vc.views.scenes()))
            vae_img = B.decode(host, models[k][2], ctxs[k]["latent"]["samples"])
            record["rows"][VAE_ROW[k]] = V.view_metrics(vc, vae_img, edit=False)
            if k == "sd":   # the SD rows' shared DDIM inversion, timed apart (each row's s is its own edit)
                t = time.time()
                B.inversions(ctxs[k], "batch", ctxs[k]["latent"])
                record["inversion_s"] = time.time() - t
        for name, k, fn, _ in chosen:
            if name in skipped:
                continue
            t = time.time()
            try:
                samples, how = fn(ctxs[k])
            except B.Skip as e:
                skipped[name] = str(e)
                print(f"  SKIPPED {name}: {e}", file=sys.stderr, flush=True)
                continue
            images = B.decode(host, models[k][2], samples)
            m = V.view_metrics(vc, images)
            if args.save:
                B.save_strip(args.save / f"views{i:02d}_{vc.kind}_{len(record['rows']):02d}.png", ctxs[k]["images"],
                             images)
            m["s"] = time.time() - t
            record["rows"][name] = m
            record["how"][name] = how
        out_sets.append(record)
        print(f"  view set {i} ({vc.kind}) done: {i + 1}/{len(cases)} ({time.time() - t0:.0f}s)", file=sys.stderr,
              flush=True)
    names = [VAE_ROW[k] for k in ("sd", "flow") if k in kinds_needed]
    names += [n for n, _, _, _ in chosen if n not in skipped]
    costs, keys = {}, {key for n, _, _, key in chosen if n not in skipped}
    t = time.time()
    if args.cost_steps > 0:
        if "sd" in kinds_needed:
            costs.update(sd_costs(host, models["sd"], args.views, args.cost_steps, args.cfg, keys))
        if "flow" in kinds_needed:
            costs.update(flow_costs(host, models["flow"], args.views, args.cost_steps, keys))
    return {"sets": args.sets, "views": args.views, "seed": args.seed, "steps": args.steps, "cfg": args.cfg,
            "flow_steps": args.flow_steps, "vertical": args.vertical, "cost_steps": args.cost_steps,
            "rows": names, "skipped": skipped, "cases": out_sets, "cost": costs,
            "seconds": time.time() - t0, "cost_seconds": time.time() - t, "threads": torch.get_num_threads()}


def merge(results: list[dict]) -> dict:
    """One result of files that ran other rows of the same view sets (``--merge``)."""
    first = results[0]
    for r in results[1:]:
        for key in ("sets", "views", "seed", "steps", "cfg", "flow_steps", "vertical"):
            if r[key] != first[key]:
                raise SystemExit(f"--merge: the files differ in {key!r} ({r[key]!r} vs {first[key]!r})")
    names, cost, cases = [], {}, {}
    for r in results:
        names += [n for n in r["rows"] if n not in names]
        cost.update(r.get("cost", {}))
        for c in r["cases"]:
            cases.setdefault(c["i"], {"i": c["i"], "kind": c["kind"], "rows": {}, "how": {}})
            if "inversion_s" in c:
                cases[c["i"]].setdefault("inversion_s", c["inversion_s"])
            cases[c["i"]]["rows"].update(c["rows"])
            cases[c["i"]]["how"].update(c["how"])
    skipped = {n: w for r in results for n, w in r["skipped"].items() if n not in names}
    flow = lambda n: n == VAE_ROW["flow"] or n.startswith("FlowEdit")   # noqa: E731
    names.sort(key=lambda n: (flow(n), not n.startswith("(")))
    return {**first, "rows": names, "skipped": skipped, "cost": cost, "cases": [cases[i] for i in sorted(cases)],
            "seconds": sum(r["seconds"] for r in results)}


def by_view(res: dict, name: str) -> list[float]:
    """Edit success per view index, over the sets."""
    per = [c["rows"][name]["per_frame"]["success"] for c in res["cases"] if name in c["rows"]]
    return [statistics.fmean(p[v] for p in per) for v in range(len(per[0]))] if per else []


def table(res: dict) -> str:
    kinds = [c["kind"] for c in res["cases"]]
    inv = [c["inversion_s"] for c in res["cases"] if "inversion_s" in c]
    inversion = statistics.fmean(inv) if inv else None
    lines = [
        f"Toy view-set benchmark: {len(res['cases'])} view sets x {res['views']} views (seed {res['seed']}; "
        + ", ".join(f"{k} {kinds.count(k)}" for k in S.EDIT_KINDS)
        + f"; cameras 12-24 px apart, vertical within {res['vertical']:g} px, depths 1-3); SD rows: world 2's Toy "
        f"World Model, 512 px, DDIM {res['steps']} steps, cfg {res['cfg']:g}; flow rows: the toy flow DiT, 256 px, "
        f"{res['flow_steps']} steps; {res['seconds']:.0f} s of running on {res['threads']} thread(s)"
        + (f"; the SD rows' shared DDIM inversion {inversion:.1f} s / set, not in their s / set" if inversion else "")
        + ". Cost / view: "
        f"dispatched ops per step per output view against stock sampling of the views (runs of "
        f"{res['cost_steps']} and {2 * res['cost_steps']} steps at {COST_RES} px).",
        "",
        "| row | edit success (per view) | colour / shape / bg / drop | by view | all views | other kept | bg PSNR vs GT "
        "| agreement (sets) | agreeing views | size spread | s / set | cost / view vs stock |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sm = B.summary(res)
    keys = {n: key for n, _, _, key in rows(res["cfg"], res["steps"], res["flow_steps"])}
    for name in res["rows"]:
        x = sm[name]
        agreeing = statistics.fmean(c["rows"][name]["agreeing"] for c in res["cases"] if name in c["rows"])
        cost = res.get("cost", {}).get(keys.get(name))
        cost = "1.00x (reference)" if keys.get(name) == "stock" and cost is not None else (
            "-" if cost is None else f"{cost:.2f}x")
        how = f" [{'; '.join(x['how'])}]" if x["how"] else ""
        lines.append(
            f"| {name}{how} | {100 * x['success']:.0f}% | "
            + " / ".join(B.pct(x["by_kind"][k]) for k in S.EDIT_KINDS)
            + f" | {'/'.join(f'{100 * s:.0f}' for s in by_view(res, name))} | {100 * x['all_frames']:.0f}% | "
            f"{100 * x['kept']:.0f}% | {B.fmt(x['bg'])} | {100 * x['consistent']:.0f}% | {100 * agreeing:.0f}% | "
            f"{B.fmt(x['size_spread'], 3)} | {B.fmt(x['s'])} | {cost} |")
    lines.append("")
    for name, why in res["skipped"].items():
        lines.append(f"- Skipped: {name}: {why}")
    lines += comparisons(res, sm)
    return "\n".join(lines)


SHORT = {"stock": "Stock", "p2p": "view by view (P2P)", "p2p+mean": "Cross-View mean + P2P",
         "p2p+extended": "Cross-View extended keys + P2P", "fe1": "FlowEdit view by view",
         "fe": "FlowEdit batched", "fe+mean": "FlowEdit + Cross-View mean"}
AGAINST = {"p2p+mean": ("p2p",), "p2p+extended": ("p2p",), "fe+mean": ("fe", "fe1")}


def comparisons(res: dict, sm: dict) -> list[str]:
    """Each cross-view row against its rows without the alignment (SD: view by view; flow: FlowEdit
    batched, the same noise, and view by view), said plainly."""
    out, n = [], len(res["cases"])
    by_key = {key: name for name, _, _, key in rows(res["cfg"], res["steps"], res["flow_steps"]) if name in res["rows"]}
    for key, refs in AGAINST.items():
        if key not in by_key:
            continue
        a = sm[by_key[key]]
        for ref in (r for r in refs if r in by_key):
            b = sm[by_key[ref]]
            out.append(f"- {SHORT[key]} against {SHORT[ref]}: agreement {round(n * a['consistent'])} vs "
                       f"{round(n * b['consistent'])} of {n} sets, edit success {100 * a['success']:.0f}% vs "
                       f"{100 * b['success']:.0f}% of the views, other kept {100 * a['kept']:.0f}% vs "
                       f"{100 * b['kept']:.0f}%, bg PSNR {B.fmt(a['bg'])} vs {B.fmt(b['bg'])} dB.")
    if out:
        out.append(f"- One set is {100 / n:.0f}% of a set figure: a set or two is within this size's noise.")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", type=int, default=8)
    p.add_argument("--views", type=int, default=V.VIEWS)
    p.add_argument("--vertical", type=float, default=V.VERTICAL, help="the largest vertical camera shift (px)")
    p.add_argument("--steps", type=int, default=10, help="DDIM steps of the SD rows")
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--flow-steps", type=int, default=28, help="FlowEdit's steps (n_max 24 of them)")
    p.add_argument("--cost-steps", type=int, default=3, help="the cost count's runs (n and 2n steps, n >= 2: "
                                                             "FlowEdit's least; 0: no count)")
    p.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the per-set, per-row metrics here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--merge", type=Path, nargs="+", help="print the table of these --json files (other rows, same "
                                                          "view sets) instead of running")
    p.add_argument("--save", type=Path, help="write each row's views under this folder (source views over edited views)")
    args = p.parse_args(argv)
    if not args.merge and args.views < 2:
        p.error("--views: a view set has at least 2 views")
    B.run_or_merge(args, run_views, table, merge, "toyviews-bench-")


if __name__ == "__main__":
    main()
