"""Stable Flow's vital blocks of the toy flow model, found by the authors' procedure (Avrahami et al., "Stable
Flow: Vital Layers for Training-Free Image Editing", CVPR 2025, Sec. 3.1).

    python -m workshop.benchmarks.vital_blocks [--captions 24] [--steps 20] [--guidance 4] [--model-dir DIR]
                                               [--json out.json]

The paper finds a DiT's vital layers by taking each out in turn: images are generated from a set of prompts and
seeds with the whole model and again with one layer bypassed (its input passed on unchanged, as its residual
connection alone would), and the layers whose absence changes the picture most are the vital ones. Flux.1 dev's
list (double blocks 0, 1, 17, 18; single 6, 9, 34, 35, 37) came from that analysis; its code
(``snap-research/stable-flow``) ships the list, not the analysis. This runs the analysis on the Toy World Model's
flow DiT through the host: its held-out captions (seeds 0..n-1) drawn by stock KSampler (euler, the host's
schedule, FluxGuidance ``--guidance``, no CFG), once whole and once with each block bypassed by a
``patches_replace["dit"]`` entry that hands the block's inputs back. The paper measures the change with DINOv2's
perceptual similarity; no DINOv2 weights reach this machine, so the change is read here in the toy world's own
terms: the PSNR of the bypassed picture against the whole model's, and how often world 2's exact judge reads a
different scene (another object, colour, shape or background).
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

from workshop.benchmarks.toyworld import decode
from workshop.benchmarks.toyworld_flow import RES, use_candidate
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode
from workshop.make_workflows import SCHEDULES
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import judge


def bypass_double(args: dict, extra: dict) -> dict:
    """A double block taken out: its image and text streams go on unchanged."""
    return {"img": args["img"], "txt": args["txt"]}


def bypass_single(args: dict, extra: dict) -> dict:
    """A single block taken out: the joined stream goes on unchanged."""
    return {"img": args["img"]}


def blocks_of(model) -> list[tuple[str, int]]:
    """Every ("double_block", i) and ("single_block", i) of the Flux model, in the order the host calls them."""
    dit = model.model.diffusion_model
    return ([("double_block", i) for i in range(len(dit.double_blocks))]
            + [("single_block", i) for i in range(len(dit.single_blocks))])


def without(model, block: tuple[str, int] | None):
    """A clone of ``model`` with ``block`` bypassed (None: the whole model)."""
    if block is None:
        return model
    clone = model.clone()
    kind, index = block
    clone.set_model_patch_replace(bypass_double if kind == "double_block" else bypass_single, "dit", kind, index)
    return clone


def draw(host, model, vae, positive, seed: int, steps: int) -> torch.Tensor:
    latent = call(host, "EmptySD3LatentImage", width=RES, height=RES, batch_size=1)[0]
    out = call(host, "KSampler", model=model, seed=seed, steps=steps, cfg=1.0, sampler_name="euler",
               scheduler=SCHEDULES["Flux"], positive=positive, negative=positive, latent_image=latent, denoise=1.0)[0]
    return decode(host, vae, out["samples"])


def same_scene(a, b) -> bool:
    """The judge reads the same objects (colour and shape, in any order) and background in both pictures."""
    (objs_a, bg_a), (objs_b, bg_b) = a.content(), b.content()
    return bg_a == bg_b and sorted(objs_a, key=str) == sorted(objs_b, key=str)


def measure(host, model, clip, vae, captions: int, steps: int, guidance: float) -> dict:
    texts = S.heldout_captions(captions)
    # each block's bypassed clone once a run, its pictures' PSNR and scene changes
    rows = {f"{kind.split('_')[0]} {i}": {"model": without(model, (kind, i)), "psnr": [], "changed": 0}
            for kind, i in blocks_of(model)}
    whole_right = 0
    t0 = time.time()
    for seed, text in enumerate(texts):
        positive = call(host, "FluxGuidance", conditioning=encode(host, clip, text), guidance=guidance)[0]
        whole = draw(host, model, vae, positive, seed, steps)
        reading = judge(whole)
        right, named = reading.objects_right(text)
        whole_right += right == named
        for row in rows.values():
            img = draw(host, row["model"], vae, positive, seed, steps)
            row["psnr"].append(S.psnr(img, whole))
            row["changed"] += not same_scene(judge(img), reading)
        print(f"  caption {seed + 1}/{len(texts)} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return {"captions": len(texts), "steps": steps, "guidance": guidance, "seconds": time.time() - t0,
            "whole_every_object_right": whole_right / len(texts),
            "blocks": {name: {"psnr": statistics.fmean(r["psnr"]), "changed": r["changed"] / len(texts)}
                       for name, r in rows.items()}}


def table(res: dict) -> str:
    ranked = sorted(res["blocks"].items(), key=lambda kv: (-kv[1]["changed"], kv[1]["psnr"]))
    lines = [f"Vital blocks (Stable Flow's analysis): {res['captions']} held-out captions, seeds 0-{res['captions'] - 1}, "
             f"euler {res['steps']} steps, guidance {res['guidance']:g}, the whole model draws every object right in "
             f"{res['whole_every_object_right']:.0%}; {res['seconds']:.0f}s on {torch.get_num_threads()} thread(s).",
             "", "| block bypassed | scene read differently | PSNR against the whole model's picture |",
             "|---|---|---|"]
    lines += [f"| {name} | {r['changed']:.0%} | {r['psnr']:.1f} |" for name, r in ranked]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--captions", type=int, default=24)
    p.add_argument("--steps", type=int, default=20, help="euler steps (the toy model's evaluation: 20)")
    p.add_argument("--guidance", type=float, default=4.0, help="FluxGuidance (the toy model's evaluation: 4)")
    p.add_argument("--model-dir", type=Path, default=None, help="a candidate model (as toyworld_flow --model-dir)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="vital-blocks-")))
    use_candidate(host, args)
    from invertedit.demo.worlds import WORLD_FLOW
    model, clip, vae = host.pack.demo.toy_model.load_toy_model(WORLD_FLOW)
    res = measure(host, model, clip, vae, args.captions, args.steps, args.guidance)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))


if __name__ == "__main__":
    main()
