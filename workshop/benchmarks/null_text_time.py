"""Null-Text Optimize's time at SD1.5 512 px, eager against CUDA graphs (issue 77's goals on an H100: the
paper's recipe within 20 s, the fast start within 5 s; it took 100 s eagerly).

    python -m workshop.benchmarks.null_text_time [--device cuda] [--steps 50] [--json F]
    python -m workshop.benchmarks.null_text_time --device cpu --tiny --steps 2     # the code path, on a CPU

The checkpoint is ``gpu_cost``'s random-weight SD1.5 (written in fp16 into a temporary folder, loaded with
the stock Load Checkpoint, so the host picks its own precisions). A seeded latent of SD's spread is inverted
by DDIM Invert (``--steps``, cfg 1), then Null-Text Optimize runs at cfg 7.5, 10 inner steps, lr 0.01 with
the paper's early stop: from the empty prompt (the paper's recipe) with ``cuda_graph`` off and on, and from
the source prompt (the fast start) with it on. Each is warmed up by a 2-step run, then timed once with
``torch.cuda.synchronize()`` around it. Reported: seconds, UNet forward and backward passes, the passes that
ran as CUDA graphs, and the largest difference between the eager and the graphed embeddings. On every
device: the aten operations one inner step dispatches eagerly (its forward, backward and Adam step) and what
is left of them with the forward and backward replayed (the Adam step's), counted with a
``TorchDispatchMode`` on a separate 1-step run. Random weights do not reach the early stop's thresholds as
a trained model does, so most timesteps take all 10 inner steps: the recipe's worst case.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from workshop.benchmarks.gpu_cost import REPO, family_specs, free_memory, report, synchronize, write_checkpoint
from workshop.headless.calls import call

SOURCE = "a photo of a cat sitting on a bench"
CFG, INNER, LR = 7.5, 10, 0.01
GOALS = {"paper's recipe, CUDA graphs": 20.0, "fast start, CUDA graphs": 5.0}   # seconds, on an H100
RUNS = {   # label: (start_from, cuda_graph)
    "paper's recipe, eager": ("negative (paper)", False),
    "paper's recipe, CUDA graphs": ("negative (paper)", True),
    "fast start, CUDA graphs": ("source prompt (faster)", True),
}


class OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_inner_step(host, model, inversion, positive, negative) -> dict:
    """Aten operations of one inner step run eagerly (the difference of one-timestep runs with 2 and 1 inner
    steps, no early stop), and of the Adam step alone, which is what is left of it where the forward and
    backward are replayed from a CUDA graph."""
    counts = {}
    for inner in (1, 2):
        with OpCounter() as c:
            call(host, "InvertEditNullTextOptimize", model=model, inversion=inversion, positive=positive,
                  negative=negative, cfg=CFG, inner_steps=inner, learning_rate=LR, early_stop=False)
        counts[inner] = sum(c.ops.values())
    null = torch.zeros(1, 77, 768, requires_grad=True)
    null.grad = torch.ones_like(null)
    opt = torch.optim.Adam([null], lr=LR)
    with OpCounter() as c:
        opt.step()
    return {"inner step, eager": counts[2] - counts[1], "inner step, replayed (the Adam step)": sum(c.ops.values())}


def measure(host, ckpt: Path, steps: int, side: int, count: bool) -> dict:
    import comfy.model_management as mm

    model, clip, _ = call(host, "CheckpointLoaderSimple", ckpt_name=ckpt.name)
    positive = call(host, "CLIPTextEncode", clip=clip, text=SOURCE)[0]
    negative = call(host, "CLIPTextEncode", clip=clip, text="")[0]
    latent = {"samples": torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0)) * 5.0}
    device = mm.get_torch_device()

    def invert(n):
        return call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=positive, steps=n,
                     scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]

    def optimise(inversion, start_from, graph):
        return call(host, "InvertEditNullTextOptimize", model=model, inversion=inversion, positive=positive,
                     negative=negative, cfg=CFG, inner_steps=INNER, learning_rate=LR, early_stop=True,
                     start_from=start_from, cuda_graph=graph)[0]

    out: dict = {"runs": {}}
    short, full = invert(2), invert(steps)
    nulls = {}
    for label, (start_from, graph) in RUNS.items():
        optimise(short, start_from, graph)     # warm-up
        synchronize(device)
        started = time.perf_counter()
        result = optimise(full, start_from, graph)
        synchronize(device)
        seconds = time.perf_counter() - started
        nulls[label] = result.clues["null_text"]
        s = result.settings["null_text"]
        out["runs"][label] = {"seconds": seconds, "unet_forward": s["unet_forward"], "unet_backward": s["unet_backward"],
                              "cuda_graphs": s["cuda_graphs"]}
        print(f"{label}: {seconds:.2f} s, {s['unet_forward']} forward / {s['unet_backward']} backward passes, "
              f"graphs: {s['cuda_graphs'] or 'none'}", flush=True)
    eager, graphed = nulls["paper's recipe, eager"], nulls["paper's recipe, CUDA graphs"]
    out["graphed_vs_eager"] = float((graphed - eager).abs().max() / eager.abs().max())
    if count:
        out["ops"] = count_inner_step(host, model, invert(1), positive, negative)
    return out


def goal_failures(result: dict) -> list[str]:
    runs = result["runs"]
    failures = [f"{label}: {runs[label]['seconds']:.1f} s (goal <= {goal:.0f} s)" for label, goal in GOALS.items()
                if runs[label]["seconds"] > goal]
    failures += [f"{label}: no pass captured" for label in GOALS if not runs[label]["cuda_graphs"]]
    if result["graphed_vs_eager"] > 1e-2:
        failures.append(f"graphed embeddings differ from the eager ones by {result['graphed_vs_eager']:.2e} (> 1e-2)")
    return failures


def table(result: dict) -> str:
    lines = [f"Null-Text Optimize, SD1.5 {result['side'] * 8} px, {result['steps']} steps, cfg {CFG}, {INNER} inner "
             f"steps, early stop; {result['device']}", "",
             "| run | seconds | forward / backward passes | CUDA graphs |", "|---|---|---|---|"]
    for label, r in result["runs"].items():
        lines.append(f"| {label} | {r['seconds']:.2f} | {r['unet_forward']} / {r['unet_backward']} | "
                     f"{', '.join(r['cuda_graphs']) or 'none'} |")
    lines.append(f"\ngraphed vs eager embeddings: largest difference {result['graphed_vs_eager']:.2e} of the largest value")
    for label, n in result.get("ops", {}).items():
        lines.append(f"aten operations, {label}: {n}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="gpu_cost's smallest SD1.5 UNet at 64 px: a code-path check")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--no-count", action="store_true", help="skip the operation count")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.device == "cpu":
        torch.set_flush_denormal(True)
    work = Path(tempfile.mkdtemp(prefix="invertedit-null-text-")).resolve()
    if work.is_relative_to(REPO):
        ap.error("the checkpoint must never be written inside the repository")
    from workshop.headless.boot import boot

    host = boot(base_dir=work / "host", cpu=args.device == "cpu")
    import comfy.model_management as mm
    import folder_paths

    device = mm.get_torch_device()
    if device.type != args.device:
        print(f"error: the host runs on {device}, not {args.device}", file=sys.stderr)
        return 2
    try:
        spec = family_specs(host.pack.demo.tiny_models, args.tiny)["sd15"]
        ckpt, _ = write_checkpoint(host, "sd15", spec, work)
        folder_paths.add_model_folder_path("checkpoints", str(work), is_default=True)
        side = 8 if args.tiny else 64
        result = measure(host, ckpt, args.steps, side, count=not args.no_count)
        result.update(device=torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
                      torch=torch.__version__, steps=args.steps, side=side, goals=GOALS)
    finally:
        free_memory()
        shutil.rmtree(work, ignore_errors=True)
    report(result, args.json, table(result), goal_failures(result) if device.type == "cuda" else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
