"""KV-Edit's background gate on the toy flow world, by the region it is given and its attn_scale (issue 27).

    python -m workshop.benchmarks.kv_edit_masks [--cases 100] [--settings box:1,box:4,grown:4,object:1,object:4]
        [--shard K/N --json FILE] | --merge FILE [FILE ...]
    python -m workshop.benchmarks.kv_edit_masks --settings object:1,object:1:re_init:skip0:attn_mask,words:1:pool1

Issue 27's gate: with KV-Edit and the object's mask, the other object kept and the background within
1 dB of the reconstruction in >= 95% of cases. The toy flow benchmark (``toyworld_flow``) reads it
with the shipped ``Flux - KV-Edit`` workflow as it ships (the edited object's box, attn_scale 1).
Here the same workflow runs on the same object cases (world 2's, at 256 px, on the Toy World
Model's flow DiT) with each setting ``REGION:ATTN_SCALE``:

- ``box``: the benchmark's region, the box of the edited object's source and target masks grown
  by 4 px (painted on the image, ``toyworld_flow.case_overrides``);
- ``grown``: those masks themselves, OR-ed and grown by 4 px;
- ``object``: the masks themselves, OR-ed (the object where it is and where it will be);
- ``words``: no mask drawn: the ``Flux - KV-Edit from a word`` workflow, whose Attention Store reads the
  edited object's noun in the source caption on KV-Edit's own inversion and gives its region as the mask
  (issue 27: the mask from the user or from the word maps); option ``poolN`` sets its ``mask_pool`` (the
  workflow's 3, Prompt-to-Prompt's local-blend margin; 1, the word's own region), ``thrX`` its threshold
  (the workflow's 0.3).

A setting may add the authors' other options, each after a colon: ``re_init`` (the region starts from
the image noised with fresh noise), ``skipN`` (N steps skipped; the workflow's 4) and ``attn_mask``
(while inverting, the region and the background do not attend to each other: the same mask wired to
Flow Invert's ``kv_mask``). Their demo's advice: fewer skipped steps, ``re_init`` and ``attn_mask`` make
the edit follow the text more, at the risk of a region that does not join its background.

Every drawn region reaches KV-Edit as a user's painted mask does, as the workflow takes it: Load
Image's MASK (1 - the image's alpha).

The gate is read two ways. As the benchmark reads it: the edit's background (the pixels outside
every object of the source and the target) against the target, within 1 dB of FireFlow's
reconstruction's (50 steps, the benchmark's best) against the source. Those pixels include the
objects' one-pixel anti-aliased edges, where the source and the target themselves differ when the
object changes (33.8 dB to identical over the 75 object cases): an edit that keeps the source
exactly there is charged for them, a reconstruction is not. So the gate is also read outside the
objects' edges (``toyworld_flow.outside_edges``), where the source and the target agree. The
VAE round trip of the source, what KV-Edit hands back outside its mask (it keeps the image's own
latent there), is given beside the reconstruction.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workshop import make_workflows as M
from workshop.benchmarks import toyworld_flow as B
from workshop.benchmarks.toyworld import fmt
from workshop.benchmarks.toyworld2 import case_metrics, changed_region, pct, run_or_merge, shard_options
from workshop.headless.calls import call
from workshop.toyworld import scenes as S

WORKFLOW = "Flux - KV-Edit"
WORD_WORKFLOW = "Flux - KV-Edit from a word"
REGIONS = ("box", "grown", "object", "words")
GROW = 4   # px, as the benchmark's box


OPTIONS = ("re_init", "attn_mask")
VALUED = {"skip": int, "pool": int, "thr": float}   # skipN; the word mask's poolN and thrX


@dataclass(frozen=True)
class Setting:
    """One run of the workflow: the region, attn_scale and the authors' other options."""
    region: str
    attn_scale: float
    re_init: bool = False
    skip_steps: int | None = None   # None: the workflow's
    attn_mask: bool = False
    mask_pool: int | None = None    # words: Attention Store's mask_pool (None: the workflow's)
    threshold: float | None = None  # words: Attention Store's threshold (None: the workflow's)

    @property
    def painted(self) -> bool:
        """The region is painted here (the object's masks), not the benchmark's box (the runner paints that) or
        the word's mask."""
        return self.region in ("grown", "object")

    @property
    def workflow(self) -> str:
        return WORD_WORKFLOW if self.region == "words" else WORKFLOW

    @property
    def key(self) -> str:
        extra = ["re_init"] * self.re_init + ([f"skip{self.skip_steps}"] if self.skip_steps is not None else []) \
            + ["attn_mask"] * self.attn_mask + ([f"pool{self.mask_pool}"] if self.mask_pool is not None else []) \
            + ([f"thr{self.threshold:g}"] if self.threshold is not None else [])
        return ":".join([self.region, f"{self.attn_scale:g}", *extra])

    def kv_edit_inputs(self) -> dict:
        out = {"attn_scale": self.attn_scale, "re_init": self.re_init}
        if self.skip_steps is not None:
            out["skip_steps"] = self.skip_steps
        return out


def parse_settings(text: str) -> list[Setting]:
    settings = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        region, _, rest = item.partition(":")
        scale, *extra = rest.split(":") if rest else [""]
        if region not in REGIONS or not scale:
            raise argparse.ArgumentTypeError(f"--settings {item!r}: give REGION:ATTN_SCALE[:OPTION...], REGION one of "
                                             f"{REGIONS}")
        values: dict[str, float] = {}
        for option in extra:
            prefix = next((n for n in VALUED if option.startswith(n)), None)
            try:
                if prefix is not None:
                    values[prefix] = VALUED[prefix](option[len(prefix):])
                elif option not in OPTIONS:
                    raise ValueError
            except ValueError:
                raise argparse.ArgumentTypeError(f"--settings {item!r}: {option} not an option; choose among "
                                                 f"{', '.join(OPTIONS)}, skipN (N steps skipped), poolN and thrX "
                                                 f"(the word mask's pool and threshold)") from None
        if region == "words" and "attn_mask" in extra:
            raise argparse.ArgumentTypeError(f"--settings {item!r}: the word's mask is read on the inversion "
                                             f"attn_mask would change; give attn_mask a drawn region")
        if ("pool" in values or "thr" in values) and region != "words":
            raise argparse.ArgumentTypeError(f"--settings {item!r}: poolN and thrX are the word mask's (region words)")
        settings.append(Setting(region, float(scale), "re_init" in extra, values.get("skip"), "attn_mask" in extra,
                                values.get("pool"), values.get("thr")))
    return settings


def workflow_for(work: Path, painted: bool, attn_mask: bool, workflow: str = WORKFLOW) -> Path:
    """The KV-Edit workflow as it ships (its mask Load Image's MASK, painted or the box the runner paints:
    ``painted`` changes nothing), or with ``attn_mask`` a copy whose mask is also wired to Flow Invert's
    ``kv_mask`` (the authors' attn_mask option). ``workflow`` the word's: as it ships."""
    path = M.REPO / "example_workflows" / f"{workflow}.json"
    if workflow != WORKFLOW or not attn_mask:
        return path
    wf = json.loads(path.read_text())
    source = (next(n["id"] for n in wf["nodes"] if n["type"] == "LoadImage"), 1)   # its MASK
    invert = next(n for n in wf["nodes"] if n["type"] == "InvertEditFlowInvert")
    link_id = max(link[0] for link in wf["links"]) + 1
    wf["links"].append([link_id, *source, invert["id"], [i["name"] for i in invert["inputs"]].index("kv_mask"), "MASK"])
    next(i for i in invert["inputs"] if i["name"] == "kv_mask")["link"] = link_id
    wf["last_link_id"] = link_id
    path = work / f"{WORKFLOW} ({'painted mask' if painted else 'box'}{', attn_mask' if attn_mask else ''}).json"
    path.write_text(json.dumps(wf))
    return path


def run_cases(host, args) -> dict:
    from PIL import Image
    from workshop.headless.runner import WORLD_FLOW
    model = B.use_candidate(host, args)
    _, _, vae = host.pack.demo.toy_model.load_toy_model(WORLD_FLOW)
    k, n = args.shard
    cases = [(i, c) for i, c in enumerate(S.edit_cases(args.cases, seed=args.seed))
             if c.kind != "background" and (not args.case or i in args.case)][k::n]
    work = Path(tempfile.mkdtemp(prefix="kv-edit-masks-"))
    workflows = {(s.painted, s.attn_mask, s.workflow): workflow_for(work, s.painted, s.attn_mask, s.workflow)
                 for s in args.settings}
    out_cases, t0 = [], time.time()
    for done, (i, case) in enumerate(cases):
        src_img, src_masks = S.render(case.source, B.RES)
        tgt_img, tgt_masks = S.render(case.target, B.RES)
        outside = ~(src_masks.any(0) | tgt_masks.any(0))
        core = B.outside_edges(~outside)
        region = changed_region(case, src_masks, tgt_masks)
        overrides = B.case_overrides(case, B.object_box(case, src_masks, tgt_masks))
        rgb = (src_img * 255).round().byte().numpy()
        image = work / f"case_{i}.png"
        Image.fromarray(rgb).save(image)
        round_trip = call(host, "VAEDecode", vae=vae, samples=call(host, "VAEEncode", pixels=src_img[None], vae=vae)[0])[0][0]
        files = B.run_workflow_for(host, "Flux - Flow inversion and edit", {**overrides, **B._inv("fireflow", 50)},
                                   image, work / f"{i}_fireflow")
        rec = B._panels(files, ("rec", "edit"))["rec"]
        record = {"i": i, "kind": case.kind, "rec_bg": S.psnr(rec, src_img, outside), "rec_core": S.psnr(rec, src_img, core),
                  "round_trip_core": S.psnr(round_trip.clamp(0, 1), src_img, core), "settings": {}}
        for setting in args.settings:
            ov = {ref: dict(v) for ref, v in overrides.items()}
            ov["InvertEditKVEdit"] = setting.kv_edit_inputs()
            if setting.mask_pool is not None:
                ov["InvertEditAttentionStore"]["mask_pool"] = setting.mask_pool
            if setting.threshold is not None:
                ov["InvertEditAttentionStore"]["threshold"] = setting.threshold
            if setting.painted:   # the object's own region painted below (the image's alpha), neither the box nor
                ov["LoadImage"] = {"paint_mask": None}   # the toy overrides' box
            given = work / f"case_{i}_{setting.region}.png" if setting.painted else image
            if not given.exists():   # each region painted once a case
                mask = B.grown(region, GROW if setting.region == "grown" else 0)   # the object's source and target
                # Load Image's MASK is 1 - alpha
                Image.fromarray(np.dstack([rgb, ((~mask).numpy() * 255).astype(np.uint8)]), "RGBA").save(given)
            path = workflows[setting.painted, setting.attn_mask, setting.workflow]
            files = B.run_workflow_for(host, setting.workflow, ov, given, work / f"{i}_{setting.key.replace(':', '_')}",
                                       path)
            panels = B._panels(files, ("mask", "edit"))
            m = case_metrics(case, True, panels["edit"], rec, tgt_img, outside, region, None)
            m["core"] = S.psnr(panels["edit"], tgt_img, core)
            m["area"] = float((panels["mask"][..., 0] > 0.5).float().mean())
            record["settings"][setting.key] = m
        out_cases.append(record)
        print(f"  case {i} ({case.kind}) done: {done + 1}/{len(cases)} ({time.time() - t0:.0f}s)", file=sys.stderr,
              flush=True)
    return {"cases_total": args.cases, "seed": args.seed, "steps": "the workflow's", "cfg": "the workflow's",
            "model": model,
            "shard": f"{k}/{n}", "rows": [[s.key, True] for s in args.settings], "cases": out_cases,
            "seconds": time.time() - t0, "threads": torch.get_num_threads()}


def gate(c: dict, m: dict, reading: str) -> bool:
    """The other object kept and the background within 1 dB of the reconstruction's: as the benchmark
    reads it (``"benchmark"``), or outside the objects' edges (``"core"``)."""
    bg, ref = (m["bg"], c["rec_bg"]) if reading == "benchmark" else (m["core"], c["rec_core"])
    return bool(m["kept"]) and bg >= ref - 1.0


def table(res: dict) -> str:
    cases = res["cases"]
    if not cases:
        return "no cases"
    names = {"box": f"the object's box grown {GROW} px (the workflow's)", "grown": f"the object's mask grown {GROW} px",
             "object": "the object's mask", "words": "the noun's mask (Attention Store, the word workflow)"}
    mean = lambda key: fmt(statistics.fmean(c[key] for c in cases))   # noqa: E731
    lines = [f"KV-Edit's background gate: {len(cases)} object edit cases of world 2's first {res['cases_total']} "
             f"(seed {res['seed']}) at {B.RES} px, the `{WORKFLOW}` workflow"
             f"{f' (the words rows: `{WORD_WORKFLOW}`)' if any(k.startswith('words') for k, _ in res['rows']) else ''}"
             f" on the Toy World Model's flow DiT "
             f"({res.get('model', 'models/toyworld-flow')}); "
             f"{res['seconds']:.0f}s of running on {res['threads']} thread(s). FireFlow's reconstruction: background "
             f"{mean('rec_bg')} dB (the benchmark's reading), {mean('rec_core')} dB outside the objects' edges; the VAE "
             f"round trip there {mean('round_trip_core')} dB.", "",
             "| region, attn_scale (options) | gate, the benchmark's reading | gate outside the objects' edges | colour / shape / "
             "drop (outside the edges) | other kept | edit success: colour / shape / drop | whole case | bg PSNR vs GT (benchmark's) | "
             "outside the edges | region's area |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, _ in res["rows"]:
        region, scale, *extra = key.split(":")
        ms = [(c, c["settings"][key]) for c in cases]
        by_kind = " / ".join(pct([gate(c, m, "core") for c, m in ms if c["kind"] == kind])
                             for kind in ("colour", "shape", "drop"))
        success = " / ".join(pct([m["success"] for c, m in ms if c["kind"] == kind]) for kind in ("colour", "shape", "drop"))
        lines.append(f"| {names[region]}, {', '.join([scale, *extra])} | {pct([gate(c, m, 'benchmark') for c, m in ms])} | "
                     f"{pct([gate(c, m, 'core') for c, m in ms])} | {by_kind} | {pct([m['kept'] for _, m in ms])} | "
                     f"{success} | {pct([m['case'] for _, m in ms])} | "
                     f"{fmt(statistics.fmean(m['bg'] for _, m in ms))} | {fmt(statistics.fmean(m['core'] for _, m in ms))} | "
                     f"{100 * statistics.fmean(m['area'] for _, m in ms):.1f}% |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--settings", type=parse_settings, default=parse_settings("box:1,box:4,grown:4,object:1,object:4"),
                   help="REGION:ATTN_SCALE[:OPTION...], comma-separated; REGION box, grown, object or words; OPTION "
                        "re_init, attn_mask, skipN, poolN or thrX (words)")
    p.add_argument("--case", type=int, action="append", default=[], help="only this case (repeatable)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="a candidate flow model's folder (as toyworld_flow's --model-dir), for this run only")
    shard_options(p)
    run_or_merge(p.parse_args(argv), run_cases, table, "kv-edit-masks-")


if __name__ == "__main__":
    main()
