"""The toy clip benchmark (issue 82): world 2's edits applied to moving clips, read frame by frame
by the exact judge, through the real nodes and the Toy World Model.

    python -m workshop.benchmarks.toyworld2_clips [--clips 12] [--frames 8] [--steps 10] [--cfg 5]
        [--flow-steps 28] [--rows WORD,WORD] [--seed 0] [--json out.json] [--threads 1] [--save DIR]
    python -m workshop.benchmarks.toyworld2_clips --merge a.json b.json [--json all.json]
        (the table of files that ran other rows, or other clips (--start K: clips K..), of one clip set)

Clips (``toyworld.clips.clip_edit_cases``): the still benchmark's edit cases (``scenes.edit_cases``,
same seed: an object's colour, its shape, the background, dropping an object, in turn), each scene
set moving (both objects along straight paths, 2-6 px a frame, inside and apart in every frame),
``--frames`` frames (8; 16 as an option); the edit applies to every frame, whose exact answer is
rendered. Each row edits the whole clip; ``toyworld.clip_judge.clip_metrics`` reads every frame:

- edit success   per frame, averaged (colour / shape / bg / drop: per kind); "all frames": the
                 clips whose edit succeeds in every frame.
- other kept     per frame, averaged (colour, shape, centre within 3 px, size within 10%).
- bg PSNR        per frame outside every object against the exact target frame, averaged (dB).
- consistent     the clips whose edited object (background; a drop: its absence) reads the same
                 colour and shape in every frame, right or wrong.
- size spread    colour/shape edits: (largest - smallest) / mean of the edited object's read size
                 over the frames (mean over the clips where it is read in every frame).
- flicker        background flicker: the mean absolute frame-to-frame change (8-bit levels) of the
                 pixels that are background in every frame of the source and target clips (objects
                 grown by 8 px); the exact clips' is 0, so it is what the edit adds over the source
                 clip. The VAE round trip of the source clip (first line of each model) is its floor.
- s / clip       seconds per clip (the first SD row pays for the clip's shared DDIM inversion).

Rows (the still benchmark's Direct inversion + Prompt-to-Prompt: replace, refine for a drop; cross
0.8, self 0.4; DDIM ``--steps`` steps, ddim_uniform, cfg ``--cfg``; world 2's model, 512 px):
1. Frame by frame: Direct inversion + P2P on the clip's frames as a batch (one inversion, one
   sampling run, no attention across frames), or, where the pair node does not take a frame batch,
   one inversion and run per frame (the same computation; the row's name says which ran).
2. Extended attention: the same with Cross-Frame Attention on the pair's model (each frame's
   self-attention over its anchor frames' keys and values; the node's default anchors, first and
   previous: Tune-A-Video / FateZero's sparse-causal attention).
3. FateZero Fusion: its pair node in Attention Inject's place on the same Direct inversion, at its
   (the authors') defaults: refine, cross 0.8, self 0.6, sparse-causal attention, the self-attention
   blended on the edited object's noun (the shape word; "background"; a drop: the dropped noun) at 0.3.
4. TokenFlow (the node's defaults, the authors': keyframe batch 8, self-attention injection 0.5,
   features 0.8, seed 1) on the clip's DDIM inversion with an empty prompt (the paper's), the target
   prompt at ``--cfg`` (paper 7.5).
On the toy flow model ("two objects, flow DiT", 256 px; the authors' Flux settings of the shipped
FlowEdit workflow: ``--flow-steps`` 28, n_max 24, guidance 1.5 / 5.5, euler, ModelSamplingFlux at
256 px, RandomNoise seed 0):
5. FlowEdit frame by frame: one run per frame (the same seed for every frame, as a user running the
   still workflow once per frame).
6. FlowEdit batched: one run over the frame batch (the noise of the batch drawn by RandomNoise).
A row whose node is not in the pack (yet) is skipped with a printed line saying so.
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

from workshop.headless.boot import boot
from workshop.benchmarks.toyworld2 import blend_words
from workshop.headless.calls import call, encode
from workshop.toyworld import clips as C
from workshop.toyworld import scenes as S
from workshop.toyworld.clip_judge import clip_metrics, finite_mean

SCHEDULER = "ddim_uniform"
FLOW_RES = 256
FLOWEDIT = {"n_max": 24, "source_guidance": 1.5, "target_guidance": 5.5, "n_min": 0, "n_avg": 1}   # the Flux workflow's
P2P_KW = {"reweight": "", "cross_replace": 0.8, "self_replace": 0.4, "local_blend": False}


class Skip(Exception):
    """A row that cannot run here (its node is absent, or does not take a frame batch): the reason."""


def refusal(host):
    """The pack's NodeInputError class (bad inputs are refusals, not crashes)."""
    return host.pack.refusals.NodeInputError


def find_node(host, *fragments: str) -> str | None:
    """The first of the host's node class names containing one of ``fragments`` (case-insensitive)."""
    names = sorted(host.nodes.NODE_CLASS_MAPPINGS)
    for frag in fragments:
        for n in names:
            if n.startswith("InvertEdit") and frag.lower() in n.lower():
                return n
    return None


def node_inputs(host, class_type: str) -> dict[str, tuple]:
    """``{input name: (type, options)}`` of a node (required and optional)."""
    cls = host.nodes.NODE_CLASS_MAPPINGS[class_type]
    spec = cls.INPUT_TYPES()
    out = {}
    for group in ("required", "optional"):
        for name, v in spec.get(group, {}).items():
            out[name] = (v[0], v[1] if len(v) > 1 else {}, group)
    return out


def call_with_defaults(host, class_type: str, given: dict) -> tuple:
    """Call a node with ``given`` (by input name, or by socket type: the keys in upper case) and every
    other required input at its default (a combo's first option)."""
    kw = {}
    for name, (typ, opts, group) in node_inputs(host, class_type).items():
        if name in given:
            kw[name] = given[name]
        elif isinstance(typ, str) and typ in given:
            kw[name] = given[typ]
        elif group == "required":
            if isinstance(typ, list):
                kw[name] = opts.get("default", typ[0])
            elif "default" in opts:
                kw[name] = opts["default"]
            else:
                raise Skip(f"{class_type}: no value for its required input {name!r} ({typ})")
    return call(host, class_type, **kw)


# ---------------------------------------------------------------------------------------------
# The SD rows (world 2's model, 512 px)
# ---------------------------------------------------------------------------------------------

def sd_context(host, models, cc: C.ClipEditCase, steps: int, cfg: float, scenes=None) -> dict:
    """The SD rows' inputs of a clip edit (``scenes``: other frames' scenes, e.g. a view set's, in the clip's place)."""
    model, clip, vae = models
    images, _ = C.render_clip(cc.clip.scenes() if scenes is None else scenes)
    return {"host": host, "model": model, "clip": clip, "vae": vae, "steps": steps, "cfg": cfg, "cache": {},
            "images": images, "latent": call(host, "VAEEncode", pixels=images, vae=vae)[0],
            "src": encode(host, clip, cc.source_caption), "tgt": encode(host, clip, cc.target_caption),
            "empty": encode(host, clip, ""), "src_text": cc.source_caption, "tgt_text": cc.target_caption,
            "frames": images.shape[0], "blend_word": blend_words(cc.case)[0]}


def inversions(ctx, key, latent) -> tuple:
    """(DDIM Invert's outputs, Direct Inversion's record) of ``latent`` (source prompt, cfg 1), cached."""
    if key not in ctx["cache"]:
        inv, lat, sigmas = call(ctx["host"], "InvertEditDDIMInvert", model=ctx["model"], latent=latent,
                                positive=ctx["src"], steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=0, cfg=1.0)
        direct = call(ctx["host"], "InvertEditDirectInversion", inversion=inv)[0]
        ctx["cache"][key] = (inv, lat, direct)
    return ctx["cache"][key]


def sample(ctx, model, latent, positive):
    return call(ctx["host"], "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=ctx["steps"],
                cfg=ctx["cfg"], sampler_name="ddim", scheduler=SCHEDULER, positive=positive, negative=ctx["empty"],
                latent_image=latent, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")[0]["samples"]


def _p2p_mode(ctx) -> str:
    return "replace" if len(ctx["src_text"].split()) == len(ctx["tgt_text"].split()) else "refine"


def p2p_pair(ctx, latent, record, extra=None) -> torch.Tensor:
    """Direct inversion + Prompt-to-Prompt on ``latent`` (F rows): the pair node's 2F rows (source
    frames, then target frames) sampled in one run, ``extra(model, ctx, record) -> model`` applied to
    the pair's model (a consistency node); returns the F target rows."""
    host = ctx["host"]
    m, cond, pair = call(host, "InvertEditAttentionInject", model=ctx["model"], clip=ctx["clip"], latent=latent,
                         source_prompt=ctx["src_text"], target_prompt=ctx["tgt_text"], mode=_p2p_mode(ctx), **P2P_KW)
    if extra is not None:
        m = extra(m, ctx, record)
    m = call(host, "InvertEditApplyInversion", model=m, inversion=record)[0]
    out = sample(ctx, m, pair, cond)
    f = latent["samples"].shape[0]
    return out[f:]


def frame_by_frame(ctx) -> tuple[torch.Tensor, str]:
    """Row 1: batched where the pair node takes the frame batch, else one run per frame."""
    try:
        inv, lat, direct = inversions(ctx, "batch", ctx["latent"])
        return p2p_pair(ctx, lat, direct), "one batched run"
    except refusal(ctx["host"]) as e:
        note = f"per frame: {ctx['frames']} runs (the batched run was refused: {str(e)[:120]})"
    outs = []
    for f in range(ctx["frames"]):
        one = {"samples": ctx["latent"]["samples"][f:f + 1]}
        inv, lat, direct = inversions(ctx, ("frame", f), one)
        outs.append(p2p_pair(ctx, lat, direct))
    return torch.cat(outs), note


def consistency_row(fragments: tuple[str, ...], label: str, given=None):
    """Row 2: Direct + P2P on the frame batch with a consistency node ``fragments`` names applied to
    the pair's model: its MODEL the pair's model, its LATENT the clip's inverted latent (F frames), its
    INVERSION the clip's DDIM inversion, ``given(ctx)``'s inputs, the rest at the node's defaults."""
    def run(ctx):
        node = find_node(ctx["host"], *fragments)
        if node is None:
            raise Skip(f"{label}: no node named like {' / '.join(fragments)} in the pack yet")

        def extra(m, ctx_, record):
            inv, lat, _ = ctx_["cache"]["batch"]
            return call_with_defaults(ctx_["host"], node, {"MODEL": m, "LATENT": lat, "INVERSION": inv,
                                                           "CLIP": ctx_["clip"], **(given(ctx_) if given else {})})[0]
        try:
            inv, lat, direct = inversions(ctx, "batch", ctx["latent"])
            return p2p_pair(ctx, lat, direct, extra), "one batched run"
        except refusal(ctx["host"]) as e:
            raise Skip(f"{label}: the frame batch was refused ({str(e)[:160]})") from None
    return run


def fatezero(ctx) -> tuple[torch.Tensor, str]:
    """Row 3: FateZero Fusion, the pair node in Attention Inject's place, at the node's (the authors')
    defaults (refine, cross 0.8, self 0.6, blend threshold 0.3; sparse-causal attention inside) with
    the edited object's noun as its blend words (the source's shape word, "background" for a background
    edit; as the authors' configs name the edited word), on the Direct inversion of the clip."""
    host = ctx["host"]
    if "InvertEditFateZero" not in host.nodes.NODE_CLASS_MAPPINGS:
        raise Skip("FateZero fusion: no InvertEditFateZero node in the pack yet")
    inv, lat, direct = inversions(ctx, "batch", ctx["latent"])
    try:
        m, cond, pair = call_with_defaults(host, "InvertEditFateZero", {
            "model": ctx["model"], "clip": ctx["clip"], "latent": lat, "source_prompt": ctx["src_text"],
            "target_prompt": ctx["tgt_text"], "blend_words": ctx["blend_word"]})
        m = call(host, "InvertEditApplyInversion", model=m, inversion=direct)[0]
        out = sample(ctx, m, pair, cond)
    except refusal(host) as e:
        raise Skip(f"FateZero fusion: refused ({str(e)[:200]})") from None
    return out[ctx["frames"]:], "one batched run"


def tokenflow(ctx) -> tuple[torch.Tensor, str]:
    """Row 4: TokenFlow at the node's (the authors') defaults (batch_size at most the clip's frames) on the clip's DDIM inversion with an empty
    prompt (the paper's), sampled with the target prompt at the benchmark's cfg by KSamplerAdvanced."""
    host = ctx["host"]
    if "InvertEditTokenFlow" not in host.nodes.NODE_CLASS_MAPPINGS:
        raise Skip("TokenFlow: no InvertEditTokenFlow node in the pack yet")
    key = "empty_inversion"
    if key not in ctx["cache"]:
        ctx["cache"][key] = call(host, "InvertEditDDIMInvert", model=ctx["model"], latent=ctx["latent"],
                                 positive=ctx["empty"], steps=ctx["steps"], scheduler=SCHEDULER, start_at_step=0,
                                 cfg=1.0)
    inv, lat, _ = ctx["cache"][key]
    default = node_inputs(host, "InvertEditTokenFlow")["batch_size"][1]["default"]
    try:
        m = call_with_defaults(host, "InvertEditTokenFlow", {"model": ctx["model"], "inversion": inv,
                                                              "source": ctx["empty"],
                                                              "batch_size": min(default, ctx["frames"])})[0]
        return sample(ctx, m, lat, ctx["tgt"]), "one batched run"
    except refusal(host) as e:
        raise Skip(f"TokenFlow: refused ({str(e)[:200]})") from None


# ---------------------------------------------------------------------------------------------
# The flow rows (the toy flow model, 256 px)
# ---------------------------------------------------------------------------------------------

def flow_context(host, models, cc: C.ClipEditCase, steps: int, scenes=None) -> dict:
    """The flow rows' inputs of a clip edit (``scenes`` as ``sd_context``'s)."""
    model, clip, vae = models
    images, _ = C.render_clip(cc.clip.scenes() if scenes is None else scenes, FLOW_RES)
    shifted = call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=FLOW_RES,
                   height=FLOW_RES)[0]
    return {"host": host, "model": shifted, "vae": vae, "images": images, "frames": images.shape[0], "steps": steps,
            "latent": call(host, "VAEEncode", pixels=images, vae=vae)[0],
            "src": encode(host, clip, cc.source_caption), "tgt": encode(host, clip, cc.target_caption),
            "sigmas": call(host, "BasicScheduler", model=shifted, scheduler="simple", steps=steps, denoise=1.0)[0],
            "sampler": call(host, "KSamplerSelect", sampler_name="euler")[0]}


def flowedit(ctx, latent: dict) -> torch.Tensor:
    """FlowEdit (``FLOWEDIT``) of ``latent`` on ``ctx``'s model: the edited LATENT samples."""
    host = ctx["host"]
    settings = dict(FLOWEDIT, n_max=min(FLOWEDIT["n_max"], ctx["steps"]))
    guider = call(host, "InvertEditFlowEdit", model=ctx["model"], source=ctx["src"], target=ctx["tgt"], **settings)[0]
    noise = call(host, "RandomNoise", noise_seed=0)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=ctx["sampler"], sigmas=ctx["sigmas"],
                latent_image=latent)[0]["samples"]


def flowedit_per_frame(ctx):
    outs = [flowedit(ctx, {"samples": ctx["latent"]["samples"][f:f + 1]}) for f in range(ctx["frames"])]
    return torch.cat(outs), f"{ctx['frames']} runs"


def flowedit_batched(ctx):
    try:
        out = flowedit(ctx, ctx["latent"])
    except refusal(ctx["host"]) as e:
        raise Skip(f"FlowEdit batched: the frame batch was refused ({str(e)[:160]})") from None
    if out.shape[0] != ctx["frames"]:
        raise Skip(f"FlowEdit batched: {out.shape[0]} frames came back for {ctx['frames']}")
    return out, "one batched run"


def rows(cfg: float, steps: int, flow_steps: int) -> list[tuple[str, str, object]]:
    """(row name, model "sd" | "flow", function(ctx) -> (LATENT samples of the F edited frames, how it ran))."""
    p2p = f"Direct inversion + P2P (replace, refine for drops; cross 0.8, self 0.4; DDIM {steps} steps, cfg {cfg:g})"
    fe = f"FlowEdit ({flow_steps} steps, n_max 24, guidance 1.5 / 5.5; toy flow DiT, 256 px)"
    return [
        (f"Frame by frame: {p2p}", "sd", frame_by_frame),
        (f"Extended attention (Cross-Frame Attention, its default anchors: first and previous) + {p2p}", "sd",
         consistency_row(("CrossFrame", "ExtendedAttention"), "Extended attention")),
        (f"FateZero Fusion (its defaults: refine, cross 0.8, self 0.6, blend 0.3 on the edited noun; sparse-causal "
         f"attention) on Direct inversion (DDIM {steps} steps, cfg {cfg:g})", "sd", fatezero),
        (f"TokenFlow (node defaults: keyframe batch 8 or the clip's frames, injection 0.5 / 0.8; empty-prompt DDIM inversion, {steps} steps, "
         f"cfg {cfg:g})", "sd", tokenflow),
        (f"{fe}, frame by frame", "flow", flowedit_per_frame),
        (f"{fe}, batched", "flow", flowedit_batched),
    ]


# ---------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------

VAE_ROW = {"sd": "(VAE round trip of the source clip, world 2's model: the flicker floor)",
           "flow": "(VAE round trip of the source clip, toy flow model: the flicker floor)"}


def decode(host, vae, samples) -> torch.Tensor:
    return call(host, "VAEDecode", vae=vae, samples={"samples": samples})[0]


def save_strip(path: Path, source: torch.Tensor, edit: torch.Tensor) -> None:
    """The source frames over the edited frames, one PNG (``--save``)."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    rows_ = [torch.cat(list(x.float().cpu()), dim=1) for x in (source, edit)]
    Image.fromarray(C.to_uint8(torch.cat(rows_, dim=0))).save(path)


def run_clips(host, args) -> dict:
    from invertedit.demo.worlds import WORLD_2, WORLD_FLOW
    toy = host.pack.demo.toy_model
    wanted = [w.strip() for w in args.rows.split(",") if w.strip()]
    chosen = [r for r in rows(args.cfg, args.steps, args.flow_steps) if not wanted or any(w in r[0] for w in wanted)]
    kinds_needed = {k for _, k, _ in chosen}
    models = {k: toy.load_toy_model(WORLD_2 if k == "sd" else WORLD_FLOW) for k in kinds_needed}
    cases = C.clip_edit_cases(args.clips, seed=args.seed, frames=args.frames)
    start = getattr(args, "start", 0)
    skipped: dict[str, str] = {}
    out_clips, t0 = [], time.time()
    for i, cc in list(enumerate(cases))[start:]:
        record = {"i": i, "kind": cc.kind, "rows": {}, "how": {}}
        ctxs = {}
        for k in sorted(kinds_needed):
            ctxs[k] = (sd_context(host, models[k], cc, args.steps, args.cfg) if k == "sd"
                       else flow_context(host, models[k], cc, args.flow_steps))
            vae_img = decode(host, models[k][2], ctxs[k]["latent"]["samples"])
            record["rows"][VAE_ROW[k]] = clip_metrics(cc, vae_img, edit=False)
        for name, k, fn in chosen:
            if name in skipped:
                continue
            t = time.time()
            try:
                samples, how = fn(ctxs[k])
            except Skip as e:
                skipped[name] = str(e)
                print(f"  SKIPPED {name}: {e}", file=sys.stderr, flush=True)
                continue
            images = decode(host, models[k][2], samples)
            m = clip_metrics(cc, images)
            if args.save:
                save_strip(args.save / f"clip{i:02d}_{cc.kind}_{len(record['rows']):02d}.png", ctxs[k]["images"], images)
            m["s"] = time.time() - t
            record["rows"][name] = m
            record["how"][name] = how
        out_clips.append(record)
        print(f"  clip {i} ({cc.kind}) done: {i + 1}/{len(cases)} ({time.time() - t0:.0f}s)", file=sys.stderr,
              flush=True)
    names = [VAE_ROW[k] for k in ("sd", "flow") if k in kinds_needed]
    names += [n for n, _, _ in chosen if n not in skipped]
    return {"clips": args.clips, "frames": args.frames, "seed": args.seed, "steps": args.steps, "cfg": args.cfg,
            "flow_steps": args.flow_steps, "rows": names, "skipped": skipped, "cases": out_clips,
            "seconds": time.time() - t0, "threads": torch.get_num_threads()}


def merge(results: list[dict]) -> dict:
    """One result of files that ran other rows, or other clips (``--start``), of the same clip set
    (``--merge``): every row must have every clip's figures; the seconds summed."""
    first = results[0]
    for r in results[1:]:
        for key in ("frames", "seed", "steps", "cfg", "flow_steps"):
            if r[key] != first[key]:
                raise SystemExit(f"--merge: the files differ in {key!r} ({r[key]!r} vs {first[key]!r})")
    rows_, skipped, cases = [], {}, {}
    for r in results:
        rows_ += [n for n in r["rows"] if n not in rows_]
        skipped.update({n: why for n, why in r["skipped"].items() if n not in rows_})
        for c in r["cases"]:
            cases.setdefault(c["i"], {"i": c["i"], "kind": c["kind"], "rows": {}, "how": {}})
            cases[c["i"]]["rows"].update(c["rows"])
            cases[c["i"]]["how"].update(c["how"])
    def order(n):   # the SD model's rows, then the flow model's, each after its VAE round trip
        flow = n == VAE_ROW["flow"] or n.startswith("FlowEdit")
        return (flow, not n.startswith("("))
    missing = [(n, c["i"]) for n in rows_ for c in cases.values() if n not in c["rows"]]
    if missing:
        raise SystemExit(f"--merge: row {missing[0][0]!r} has no figures for clip {missing[0][1]}")
    return {**first, "clips": max(r["clips"] for r in results), "rows": sorted(rows_, key=order), "skipped": {n: w for n, w in skipped.items() if n not in rows_},
            "cases": [cases[i] for i in sorted(cases)], "seconds": sum(r["seconds"] for r in results)}


def pct(vals) -> str:
    vals = [v for v in vals if v is not None]
    return f"{100 * statistics.fmean(vals):.0f}%" if vals else "-"


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else ("inf" if x == float("inf") else f"{x:.{digits}f}")


def summary(res: dict) -> dict[str, dict]:
    """Per row: the table's figures."""
    out = {}
    for name in res["rows"]:
        pairs = [(c["kind"], c["rows"][name], c["how"].get(name)) for c in res["cases"] if name in c["rows"]]
        m = [x for _, x, _ in pairs]
        spreads = [x["size_spread"] for x in m if x["size_spread"] is not None]
        out[name] = {
            "success": statistics.fmean(x["success"] for x in m),
            "by_kind": {k: [x["success"] for kk, x, _ in pairs if kk == k] for k in S.EDIT_KINDS},
            "all_frames": statistics.fmean(x["all_frames"] for x in m),
            "kept": statistics.fmean(x["kept"] for x in m),
            "bg": finite_mean([x["bg"] for x in m]),
            "consistent": statistics.fmean(x["consistent"] for x in m),
            "size_spread": statistics.fmean(spreads) if spreads else None,
            "flicker": statistics.fmean(x["flicker"] for x in m),
            "s": statistics.fmean(x["s"] for x in m) if "s" in m[0] else None,
            "how": sorted({h for _, _, h in pairs if h}),
        }
    return out


def table(res: dict) -> str:
    kinds = [c["kind"] for c in res["cases"]]
    lines = [
        f"Toy clip benchmark: {len(res['cases'])} clips x {res['frames']} frames (seed {res['seed']}; "
        + ", ".join(f"{k} {kinds.count(k)}" for k in S.EDIT_KINDS)
        + f"); SD rows: world 2's Toy World Model, 512 px, DDIM {res['steps']} steps, cfg {res['cfg']:g}; flow rows: "
        f"the toy flow DiT, 256 px, {res['flow_steps']} steps; {res['seconds']:.0f} s of running on "
        f"{res['threads']} thread(s).",
        "",
        "| row | edit success (per frame) | colour / shape / bg / drop | all frames | other kept | bg PSNR vs GT | "
        "consistent | size spread | bg flicker (levels) | s / clip |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    sm = summary(res)
    for name in res["rows"]:
        x = sm[name]
        how = f" [{'; '.join(x['how'])}]" if x["how"] else ""
        lines.append(
            f"| {name}{how} | {100 * x['success']:.0f}% | "
            + " / ".join(pct(x["by_kind"][k]) for k in S.EDIT_KINDS)
            + f" | {100 * x['all_frames']:.0f}% | {100 * x['kept']:.0f}% | {fmt(x['bg'])} | "
            f"{100 * x['consistent']:.0f}% | {fmt(x['size_spread'], 3)} | {fmt(x['flicker'], 2)} | {fmt(x['s'])} |")
    lines.append("")
    for name, why in res["skipped"].items():
        lines.append(f"- Skipped: {name}: {why}")
    lines += comparisons(res, sm)
    return "\n".join(lines)


def comparisons(res: dict, sm: dict) -> list[str]:
    """Each consistent row against its frame-by-frame row, said plainly."""
    out = []
    base = {"sd": next((n for n in res["rows"] if n.startswith("Frame by frame")), None),
            "flow": next((n for n in res["rows"] if n.endswith("frame by frame")), None)}
    for name in res["rows"]:
        if name.startswith("(") or name in base.values():
            continue
        ref = base["flow" if name.startswith("FlowEdit") else "sd"]
        if ref is None:
            continue
        a, b = sm[name], sm[ref]
        better = [w for w, d in (("consistency", a["consistent"] - b["consistent"]),
                                 ("edit success", a["success"] - b["success"]),
                                 ("less flicker", b["flicker"] - a["flicker"])) if d > 0]
        worse = [w for w, d in (("consistency", a["consistent"] - b["consistent"]),
                                ("edit success", a["success"] - b["success"]),
                                ("flicker", b["flicker"] - a["flicker"])) if d < 0]
        n = len(res["cases"])
        out.append(f"- {name.split(' (')[0]} against frame by frame: consistent {round(n * a['consistent'])} vs "
                   f"{round(n * b['consistent'])} of {n} clips, edit success {100 * a['success']:.0f}% vs "
                   f"{100 * b['success']:.0f}% of the frames, flicker {a['flicker']:.2f} vs {b['flicker']:.2f} levels: "
                   + (f"better on {', '.join(better)}" if better else "no better on any")
                   + (f"; worse on {', '.join(worse)}" if worse else "") + f" (one clip is {100 / n:.0f}% of a clip "
                   f"figure: differences of a clip or two are within this size's noise).")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--start", type=int, default=0, help="run clips START..clips-1 only (merge the files with --merge)")
    p.add_argument("--frames", type=int, default=C.FRAMES)
    p.add_argument("--steps", type=int, default=10, help="DDIM steps of the SD rows")
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--flow-steps", type=int, default=28, help="FlowEdit's steps (n_max 24 of them)")
    p.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the per-clip, per-row metrics here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--merge", type=Path, nargs="+", help="print the table of these --json files (other rows, same "
                                                          "clips) instead of running")
    p.add_argument("--save", type=Path, help="write each row's clip under this folder (source frames over edited frames)")
    args = p.parse_args(argv)
    if not args.merge and args.frames < 2:
        p.error("--frames: a clip has at least 2 frames")
    run_or_merge(args, run_clips, table, merge, "toyclip-bench-")


def run_or_merge(args, run, table, merge, prefix: str) -> None:
    """A benchmark's end: the table of the ``--merge`` files, or of ``run(host, args)`` on a booted host
    (``--threads`` torch threads, no progress bars); the result written to ``--json`` where given."""
    if args.merge:
        res = merge([json.loads(f.read_text()) for f in args.merge])
    else:
        torch.set_num_threads(args.threads)
        torch.set_flush_denormal(True)
        host = boot(base_dir=Path(tempfile.mkdtemp(prefix=prefix)))
        import comfy.utils
        comfy.utils.PROGRESS_BAR_ENABLED = False
        res = run(host, args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(table(res))


if __name__ == "__main__":
    main()
