"""Toy world 2 edit benchmark (issue 12): every inversion x editor combination of the pack on
two-object scenes, through the real nodes and the Toy World 2 Model (512 px, 64x64 latents).

    python -m workshop.benchmarks.toyworld2 [--cases 100] [--steps 15] [--cfg 5] [--seed 0] [--rows WORD,WORD]
                                            [--self-replace 0.4] [--shard K/N] [--json out.json]
    python -m workshop.benchmarks.toyworld2 --merge a.json b.json      (the table of shard files)

Edit cases (``toyworld.scenes.edit_cases``, fixed seed): an object's colour, an object's shape,
the background colour, and dropping an object (the caption loses "and a blue square": the
token-count-changing edit), in turn; the exact answer of each is rendered. ``--shard K/N`` runs
cases K, K+N, K+2N, ... and ``--json`` writes per-case, per-row metrics, so that processes can
split the cases; ``--merge`` prints the table of their files.

Per case and row, against the row's intended image (the source for the reconstruction row,
the exact target ``case.target`` for an edit row), from the exact judge's reading:
- edit success   the edited object right: colour/shape edits, the read object nearest the
                 target object has the target colour and shape; background edits, the read
                 background is the target's; drop, no read object of the dropped object's
                 colour has its centre in the dropped object's box, and the background is right.
                 (Reconstruction row: the edited object, or background, is the source's.)
- other kept     every kept object (``case.kept``) found by its colour with the same colour,
                 shape, centre within 3 px and size within 10% (``ObjReading.matches``).
- structure      colour/shape edits only: the read object nearest the target object has its
                 centre within 3 px and size within 10% (reported over those cases).
- whole case     edit success and other kept (and structure, for colour/shape edits).
- bg PSNR vs GT  PSNR outside every object (the union of the source's and the target's object
                 masks) against the exact target (dB).
- bg PSNR vs rec the same region against the row's own reconstruction (the second output of
                 each technique: what its inversion gives back with the source prompt),
                 averaged over the cases whose background must stay (not background edits).
- mask IoU       rows that blend on a mask: IoU of the mask (> 0.5, resized to 512 px nearest)
                 with the true changed region (the edited object's source and target masks;
                 for a background edit the complement of every object mask). The oracle row
                 blends on that true region (IoU 1 by construction), which separates the
                 quality of DiffEdit's mask from the blending itself.
- s / case       seconds per case of the row; the first row that needs a shared inversion
                 (cached per case) pays for it.
The table's first line is the VAE round trip of the source judged as the reconstruction row is:
the ceiling every row's figures are read against (the VAE's edges can move a thin triangle's box
by a few pixels, so even it misses the 3 px tolerance now and then).

Rows (papers' defaults; DDIM ``--steps`` steps, ddim_uniform; guided rows at ``--cfg``):
1. DDIM inversion reconstruction (source prompt, cfg 1): the reference row.
2. Naive regeneration from the inverted noise with the target prompt: DDIM (cfg 1 and cfg),
   Negative-prompt inversion, Null-text inversion (10 inner steps, lr 0.01, early stop), EDICT
   (its own sampler, mixing 0.93), edit-friendly DDPM (inversion cfg 3.5, edit cfg 15).
3. Prompt-to-Prompt (replace when the token count is the same, refine for a drop; cross 0.8,
   self 0.4) on each inversion: plain DDIM (no correction), Negative-prompt, Null-text, Direct.
   PIE-Bench's ordering: DDIM + P2P far below Null-text / Direct + P2P on the background.
4. Direct + P2P with its local blend on the edited object's noun (the shape word; "background"
   for background edits; for a drop the dropped noun in the source, none in the target),
   threshold 0.3, start 0.2.
5. Direct + Plug-and-Play (empty-prompt inversion, features 0.8, self-attention 0.5); Direct +
   MasaCtrl (step 4; the toy UNet's 4 self-attention layers are encoder 0, middle 1, decoder
   2-3, so the paper's "layer 10 of 16" (the decoder) is layer 2 here).
6. DiffEdit mask (strength 0.5, 10 noises, threshold 0.5) + Latent Blend on Direct + P2P; and
   the same with the oracle mask.
7. SEGA and LEDITS++ on edit-friendly DDPM inversions, the target caption added and the
   source's removed, as in world 1 (``workshop/benchmarks/toyworld.py``).
The techniques themselves are world 1's functions; this file only adds the world's cases,
masks, blend words and metrics.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from workshop.benchmarks.toyworld import (SCHEDULER, case_context, concept_rows, ddim_naive, ddim_reconstruction, decode,
                                          finite_mean, fmt, own_sampler_edit, pair_edit, refined_naive)
from workshop.headless.boot import boot
from workshop.headless.calls import encode
from workshop.toyworld import scenes as S
from workshop.toyworld.clip_judge import edited_right
from workshop.toyworld.scenes_judge import judge

NULL_TEXT, NEGATIVE = "InvertEditNullTextOptimize", "InvertEditNegativePromptInversion"
MASACTRL_LAYER = 2   # first decoder self-attention layer of the toy UNet (0 encoder, 1 middle, 2-3 decoder)


# ---------------------------------------------------------------------------------------------
# What world 2 adds to the techniques' ctx
# ---------------------------------------------------------------------------------------------

def blend_words(case: S.EditCase) -> tuple[str, str]:
    """The edited object's noun in each caption: its shape word, "background" for a background
    edit; a dropped object has none in the target."""
    if case.kind == "background":
        return "background", "background"
    source = case.source.objects[case.index].shape
    return source, "" if case.kind == "drop" else case.target.objects[case.index].shape


def changed_region(case: S.EditCase, src_masks: torch.Tensor, tgt_masks: torch.Tensor) -> torch.Tensor:
    """``[H, W]`` bool: where the exact target differs from the source by intent."""
    if case.kind == "background":
        return ~(src_masks.any(0) | tgt_masks.any(0))
    region = src_masks[case.index]
    return region if case.kind == "drop" else region | tgt_masks[case.index]


def oracle_mask(ctx) -> torch.Tensor:
    return ctx["changed_region"].float()[None]


SELF_REPLACE = 0.4   # the paper's; ``--self-replace`` sets the Prompt-to-Prompt rows' own


def p2p(cfg: float, self_replace: float = SELF_REPLACE, **kw):
    """Prompt-to-Prompt at the paper's cross 0.8 and ``self_replace`` through ``pair_edit``:
    mode replace when the captions have the same number of words (one token each), refine
    otherwise (a drop)."""
    runs = {mode: pair_edit("InvertEditAttentionInject", cfg, mode=mode, reweight="", cross_replace=0.8,
                            self_replace=self_replace, **kw) for mode in ("replace", "refine")}

    def run(ctx):
        same = len(ctx["src_text"].split()) == len(ctx["tgt_text"].split())
        return runs["replace" if same else "refine"](ctx)
    return run


P2P = "P2P (Prompt-to-Prompt: replace, refine for drops; cross 0.8, self {self:g}; cfg {cfg:g})"
P2P_ROWS = {  # the rows of PIE-Bench's ordering question
    "DDIM": "DDIM inversion (no correction) + " + P2P,
    "Null-text": "Null-text inversion + " + P2P,
    "Direct": "Direct inversion + " + P2P,
}


def techniques(cfg: float, self_replace: float = SELF_REPLACE):
    """(row name, function(ctx) -> (output samples, reconstruction samples), is_edit); the Prompt-to-Prompt
    rows at ``self_replace``."""
    sr, names = self_replace, {k: v.format(cfg=cfg, self=self_replace) for k, v in P2P_ROWS.items()}
    return [
        ("DDIM inversion: reconstruction (source prompt, cfg 1)", ddim_reconstruction, False),
        # naive regeneration from the inverted noise
        ("DDIM inversion + naive regeneration (target prompt, cfg 1)", ddim_naive(1.0), True),
        (f"DDIM inversion + naive regeneration (target prompt, cfg {cfg:g})", ddim_naive(cfg), True),
        (f"Negative-prompt inversion + naive regeneration (cfg {cfg:g})", refined_naive(NEGATIVE, cfg), True),
        (f"Null-text inversion + naive regeneration (cfg {cfg:g}; 10 inner steps, lr 0.01, early stop)",
         refined_naive(NULL_TEXT, cfg), True),
        (f"EDICT (cfg {cfg:g}, mixing 0.93) + target prompt",
         own_sampler_edit("InvertEditEDICTInvert", "InvertEditEDICTSampler", cfg, cfg, 0, mixing=0.93), True),
        ("Edit-friendly DDPM (cfg 3.5) + target prompt (cfg 15)",
         own_sampler_edit("InvertEditDDPMInvert", "InvertEditDDPMSampler", 3.5, 15.0, 0, seed=0), True),
        # Prompt-to-Prompt on every inversion
        (names["DDIM"], p2p(cfg, sr, inversion=None), True),
        (f"Negative-prompt inversion + {P2P.format(cfg=cfg, self=sr)}", p2p(cfg, sr, inversion=NEGATIVE), True),
        (names["Null-text"], p2p(cfg, sr, inversion=NULL_TEXT), True),
        (names["Direct"], p2p(cfg, sr), True),
        (f"Direct inversion + P2P + local blend (edited noun; drop: source noun only; threshold 0.3, start 0.2; "
         f"cfg {cfg:g})", p2p(cfg, sr, local_blend=True, blend_threshold=0.3, blend_start=0.2), True),
        # other pair editors
        (f"Direct inversion (empty prompt) + Plug-and-Play (features 0.8, self-attention 0.5; cfg {cfg:g})",
         pair_edit("InvertEditPlugAndPlay", cfg, inversion_prompt="empty", feature_injection=0.8,
                   self_attention_injection=0.5), True),
        (f"Direct inversion + MasaCtrl (step 4, layer {MASACTRL_LAYER} = first decoder layer of 4; paper 10 of 16; "
         f"cfg {cfg:g})", pair_edit("InvertEditMasaCtrl", cfg, start_step=4, start_layer=MASACTRL_LAYER), True),
        # masks
        (f"Direct inversion + P2P + Latent Blend (DiffEdit mask: strength 0.5, 10 noises, threshold 0.5; cfg {cfg:g})",
         p2p(cfg, sr, blend=True, mask_threshold=0.5), True),
        (f"Direct inversion + P2P + Latent Blend (oracle mask: the true changed region; cfg {cfg:g})",
         p2p(cfg, sr, blend=oracle_mask), True),
    ] + concept_rows()


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def case_metrics(case: S.EditCase, edit: bool, out_img, rec_img, intended_img, outside, region, mask) -> dict:
    r = judge(out_img)
    success = edited_right(r, case, edit)
    kept = all((f := r.find(o.colour)) is not None and f.matches(o) for o in (case.source.objects[i] for i in case.kept))
    structure = None
    if case.kind in ("colour", "shape"):
        obj = (case.target if edit else case.source).objects[case.index]
        near = r.nearest(obj)
        structure = near is not None and near.same_structure(obj)
    iou = None
    if mask is not None:
        m = F.interpolate(mask.reshape(1, 1, *mask.shape[-2:]).float().cpu(), size=tuple(region.shape), mode="nearest")
        iou = S.mask_iou(m[0, 0] > 0.5, region)
    return {"success": float(success), "kept": float(kept),
            "structure": None if structure is None else float(structure),
            "case": float(success and kept and structure is not False),
            "bg": S.psnr(out_img, intended_img, outside), "bg_rec": S.psnr(out_img, rec_img, outside), "iou": iou}


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------

def select_rows(rows, words: str):
    wanted = [w.strip() for w in words.split(",") if w.strip()]
    return rows if not wanted else rows[:1] + [r for r in rows[1:] if any(w in r[0] for w in wanted)]


def setup_case(host, model, clip, vae, steps: int, empty, case: S.EditCase) -> tuple:
    """One case's (ctx, source image, exact target image, the region outside both captions' objects,
    the changed region), as every row reads them."""
    src_img, src_masks = S.render(case.source)
    tgt_img, tgt_masks = S.render(case.target)
    outside = ~(src_masks.any(0) | tgt_masks.any(0))
    region = changed_region(case, src_masks, tgt_masks)
    ctx = case_context(host, model, clip, vae, steps, empty, src_img, case.source_caption, case.target_caption,
                       kind=case.kind, blend_words=blend_words(case), changed_region=region)
    return ctx, src_img, tgt_img, outside, region


def run_cases(host, args) -> dict:
    """Per-case, per-row metrics of this shard, as the JSON ``--json`` writes."""
    model, clip, vae = host.pack.demo.toy_model.load_toy_model(host.pack.demo.toy_model.WORLD_2)
    k, n = args.shard
    cases = list(enumerate(S.edit_cases(args.cases, seed=args.seed)))[k::n]
    self_replace = getattr(args, "self_replace", SELF_REPLACE)
    rows = select_rows(techniques(args.cfg, self_replace), args.rows)
    empty = encode(host, clip, "")
    out_cases = []
    t0 = time.time()
    for done, (i, case) in enumerate(cases):
        ctx, src_img, tgt_img, outside, region = setup_case(host, model, clip, vae, args.steps, empty, case)
        vae_img = decode(host, vae, ctx["src_latent"]["samples"])
        record = {"i": i, "kind": case.kind, "vae": S.psnr(vae_img, src_img), "vae_bg": S.psnr(vae_img, src_img, outside),
                  "vae_metrics": case_metrics(case, False, vae_img, vae_img, src_img, outside, region, None), "rows": {}}
        for name, fn, is_edit in rows:
            t = time.time()
            ctx.pop("mask_used", None)
            out, rec = fn(ctx)
            mask = ctx.pop("mask_used", None)
            out_img, rec_img = decode(host, vae, out), decode(host, vae, rec)
            m = case_metrics(case, is_edit, out_img, rec_img, tgt_img if is_edit else src_img, outside, region, mask)
            m["s"] = time.time() - t
            record["rows"][name] = m
        out_cases.append(record)
        print(f"  case {i} ({case.kind}) done: {done + 1}/{len(cases)} ({time.time() - t0:.0f}s)", file=sys.stderr,
              flush=True)
    return {"cases_total": args.cases, "seed": args.seed, "steps": args.steps, "cfg": args.cfg,
            "self_replace": self_replace, "shard": f"{k}/{n}", "rows": [[name, is_edit] for name, _, is_edit in rows],
            "cases": out_cases, "seconds": time.time() - t0, "threads": torch.get_num_threads()}


def merge(results: list[dict]) -> dict:
    first = results[0]
    for r in results[1:]:
        for key in ("seed", "steps", "cfg", "rows", "self_replace"):
            ours, theirs = (x.get(key, SELF_REPLACE if key == "self_replace" else None) for x in (r, first))
            if ours != theirs:   # files from before --self-replace ran at the paper's 0.4
                raise SystemExit(f"--merge: the files differ in {key!r} ({ours!r} vs {theirs!r})")
    cases = sorted((c for r in results for c in r["cases"]), key=lambda c: c["i"])
    if len({c["i"] for c in cases}) != len(cases):
        raise SystemExit("--merge: a case appears in more than one file")
    return {**first, "cases": cases, "shard": " + ".join(r["shard"] for r in results),
            "seconds": sum(r["seconds"] for r in results)}


def pct(vals) -> str:
    vals = [v for v in vals if v is not None]
    return f"{100 * statistics.fmean(vals):.0f}%" if vals else "-"


VAE_ROW = "(VAE round trip of the source, no diffusion: the ceiling of the reconstruction row)"


def table(res: dict) -> str:
    cases = res["cases"]
    kinds = [c["kind"] for c in cases]
    lines = [
        f"Toy world 2 edit benchmark: {len(cases)} of {res['cases_total']} edit cases (seed {res['seed']}; shard "
        f"{res['shard']}; " + ", ".join(f"{k} {kinds.count(k)}" for k in S.EDIT_KINDS)
        + f"), DDIM {res['steps']} steps ({SCHEDULER}), cfg {res['cfg']:g}"
        + (f", every Prompt-to-Prompt row at self {res['self_replace']:g}"
           if res.get("self_replace", SELF_REPLACE) != SELF_REPLACE else "")
        + f", Toy World 2 Model; VAE ceiling "
        f"{fmt(finite_mean([c['vae'] for c in cases]))} dB (outside the objects "
        f"{fmt(finite_mean([c['vae_bg'] for c in cases]))} dB); {res['seconds']:.0f}s of running"
        f"{' (summed over the shards)' if '+' in res['shard'] else ''} on {res['threads']} thread(s).",
        "",
        "| technique | whole case | edit success | colour / shape / bg / drop | other kept | structure kept | "
        "bg PSNR vs GT | bg PSNR vs own rec | mask IoU | s / case |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for name, _ in [(VAE_ROW, False)] + res["rows"]:
        m = [c["vae_metrics"] if name == VAE_ROW else c["rows"][name] for c in cases]
        by_kind = " / ".join(pct([x["success"] for x, k in zip(m, kinds) if k == kind]) for kind in S.EDIT_KINDS)
        ious = [x["iou"] for x in m if x["iou"] is not None]
        bg = finite_mean([x["bg"] for x in m])
        whole = statistics.fmean(x["case"] for x in m)
        kept_bg = finite_mean([x["bg"] for x, k in zip(m, kinds) if k != "background"])
        summary[name] = (kept_bg, whole)
        seconds = "-" if name == VAE_ROW else f"{statistics.fmean(x['s'] for x in m):.1f}"
        lines.append(
            f"| {name} | {100 * whole:.0f}% | {pct([x['success'] for x in m])} | {by_kind} | "
            f"{pct([x['kept'] for x in m])} | {pct([x['structure'] for x in m])} | {fmt(bg)} | "
            f"{fmt(finite_mean([x['bg_rec'] for x, k in zip(m, kinds) if k != 'background']))} | "
            f"{f'{statistics.fmean(ious):.2f}' if ious else '-'} | {seconds} |")
    lines.append("")
    p2p = {k: summary.get(v.format(cfg=res["cfg"], self=res.get("self_replace", SELF_REPLACE)))
           for k, v in P2P_ROWS.items()}
    if all(p2p.values()):
        d, nt, di = (p2p[k][0] for k in ("DDIM", "Null-text", "Direct"))
        holds = d < min(nt, di)
        n = sum(k != "background" for k in kinds)
        lines.append(f"- Published ordering (PIE-Bench: DDIM + P2P well below Null-text / Direct + P2P on the background): "
                     f"bg PSNR vs GT over the {n} cases whose background must stay: DDIM + P2P {fmt(d)} dB, Null-text + "
                     f"P2P {fmt(nt)} dB, Direct + P2P {fmt(di)} dB (DDIM + P2P {d - min(nt, di):+.1f} dB against the lower of "
                     f"the two): {'holds' if holds else 'does not hold'} here.")
    edits = {name: summary[name][1] for name, is_edit in res["rows"] if is_edit}
    if edits:
        best = max(edits.values())
        names = [name for name, w in edits.items() if w == best]
        lines.append(f"- Best row by whole-case success ({100 * best:.0f}%): " + "; ".join(names) + "."
                     if best > 0 else "- Best row by whole-case success: none succeeds on a whole case.")
    return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: give K/N, e.g. 0/2") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: K must be in 0..N-1")
    return k, n


def shard_options(p: argparse.ArgumentParser) -> None:
    """The options every case benchmark shares: seed, shards, the JSON file and its merge, threads."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard", type=parse_shard, default=(0, 1), help="K/N: run cases K, K+N, K+2N, ...")
    p.add_argument("--json", type=Path, help="write the per-case, per-row metrics here")
    p.add_argument("--merge", type=Path, nargs="+", help="print the table of these --json files instead of running")
    p.add_argument("--threads", type=int, default=1)


def run_or_merge(args, run_cases, table, prefix: str) -> None:
    """Print the table of ``--merge``'s files, or boot a host, run this shard's cases
    (``run_cases(host, args)``), write ``--json`` and print the table."""
    if args.merge:
        print(table(merge([json.loads(f.read_text()) for f in args.merge])))
        return
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    host = boot(base_dir=Path(tempfile.mkdtemp(prefix=prefix)))
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    res = run_cases(host, args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(table(res))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--cfg", type=float, default=5.0, help="guidance of the guided rows")
    p.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words "
                                              "(and the reconstruction row the others are compared with)")
    p.add_argument("--self-replace", type=float, default=SELF_REPLACE,
                   help="the Prompt-to-Prompt rows' self-attention fraction (default the paper's 0.4)")
    shard_options(p)
    run_or_merge(p.parse_args(argv), run_cases, table, "toyworld2-bench-")


if __name__ == "__main__":
    main()
