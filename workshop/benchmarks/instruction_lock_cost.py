"""The instruction lock's cost per step against the plain instruction editor (issue 81), on Flux.1 Kontext and
Qwen-Image-Edit: dispatched operations per step at the real models' depth (the tiny width: what a step dispatches
grows with the blocks, not the width), and the arithmetic a step does at the real width and size (multiply-adds of
the blocks' linear layers and attention, from the tokens each computes: what a GPU's time follows at 1 MP).

    python -m workshop.benchmarks.instruction_lock_cost [--steps 4] [--shallow]

Runs: the plain editor (the instruction with the image's ReferenceLatent, sampled from noise: Kontext with
FluxGuidance 2.5, Qwen-Image-Edit with true cfg 4 and a negative carrying the reference too); the lock (KV-Edit on
the image's Euler inversion with the empty instruction, every step, a rectangle of about a third of the picture
remade), its reference computed at every step and cached (``cache_reference``); Region Lock (no inversion), the
blend alone and a step of its region cache. A single locked edit costs the inversion plus the edit; a Region Lock
edit its warm-up and refresh steps at the plain editor's cost and the others at the cache's.
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import REAL_DEPTH, custom_per_step
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode

INSTRUCTION = "make the circle yellow"
SIDE = 16    # the latent's side: 8 x 8 tokens, and as many reference tokens


def box_mask() -> torch.Tensor:
    """About a third of the 128 px picture (the region the lock leaves to the instruction)."""
    mask = torch.zeros(1, SIDE * 8, SIDE * 8)
    mask[:, 32:96, 40:88] = 1.0
    return mask


def measure(host, family: str, steps: int, real_depth: bool = True) -> list[dict]:
    """Per step: the plain editor, the lock and the cached lock; and Flow Invert keeping the lock's keys and values."""
    qwen = family == "qwen-image"
    model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models(
        family, seed=0, **(REAL_DEPTH[family] if real_depth else {}))
    shape = (1, 16, 1, SIDE, SIDE) if qwen else (1, 16, SIDE, SIDE)
    latent = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    picture = torch.rand(1, SIDE * 8, SIDE * 8, 3, generator=torch.Generator().manual_seed(1))

    def prompt(text: str) -> list:
        cond = (call(host, "TextEncodeQwenImageEdit", clip=clip, prompt=text, image=picture)[0] if qwen
                else encode(host, clip, text))
        return call(host, "ReferenceLatent", conditioning=cond, latent={"samples": latent})[0]

    instruction, empty = prompt(INSTRUCTION), prompt("")
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def guider(m):
        if qwen:
            return call(host, "CFGGuider", model=m, positive=instruction, negative=empty, cfg=4.0)[0]
        return call(host, "BasicGuider", model=m,
                    conditioning=call(host, "FluxGuidance", conditioning=instruction, guidance=2.5)[0])[0]

    kept = {(n, cache): call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=empty,
                             solver="euler", steps=n, scheduler="simple", guidance=1.0, keep_keys_values=True,
                             keep_reference=cache)[0]
            for n in (steps, 2 * steps) for cache in (False, True)}

    def locked(cache: bool):
        def make(m, n):
            m = call(host, "InvertEditKVEdit", model=m, inversion=kept[(n, cache)], mask=box_mask(), skip_steps=0,
                     attn_scale=1.0, re_init=True, seed=0, cache_reference=cache)[0]
            return guider(m), euler
        return make

    def region(cache: bool):
        def make(m, n):
            m = call(host, "InvertEditRegionLock", model=m, latent={"samples": latent}, mask=box_mask(),
                     region_cache=cache, warmup_steps=1, refresh_steps="")[0]
            return guider(m), euler
        return make

    rows = [custom_per_step(host, model, lambda m, n: (guider(m), euler), latent, steps,
                            "plain editor (instruction + reference, from noise)"),
            custom_per_step(host, model, locked(False), latent, steps, "lock (KV-Edit, reference computed)"),
            custom_per_step(host, model, locked(True), latent, steps, "lock, cache_reference"),
            custom_per_step(host, model, region(False), latent, steps, "Region Lock, the blend alone"),
            custom_per_step(host, model, region(True), latent, steps, "Region Lock, region_cache (a cached step)")]
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


def table(rows: list[dict], family: str, steps: int) -> str:
    lines = [f"\n### {family}: dispatched operations per step, tiny width at the real depth, 16x16 latent (per step = "
             f"(run of {2 * steps} steps - run of {steps}) / {steps})\n",
             "| run | aten ops / step | vs plain | model calls / step (rows) | device waits / step |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['ratio']:.2f}x | {r['calls']:.1f} "
                     f"({', '.join(map(str, r['rows']))}) | {r['syncs']:.1f} |")
    return "\n".join(lines)


#: The real models at 1 MP (1024 x 1024: 4096 image tokens, a reference at the image's own size as many): width,
#: MLP width, blocks, text tokens (Kontext: T5's 512; Qwen-Image-Edit: about 300, the instruction and the picture's
#: vision tokens at the host's 384 x 384), rows a step (Kontext: 1; Qwen-Image-Edit under cfg: 2).
REAL = {"Flux.1 Kontext": dict(width=3072, mlp=12288, double=19, single=38, text=512, rows=1),
        "Qwen-Image-Edit": dict(width=3072, mlp=12288, double=60, single=0, text=300, rows=2)}
IMAGE_TOKENS = 4096


def step_macs(width: int, mlp: int, double: int, single: int, text: int, rows: int, queries: int, keys: int,
              tokens: int) -> float:
    """Multiply-adds of one step: every block's linear layers on the ``tokens`` it computes (double stream: q, k,
    v and the output, 4 width^2, and the MLP, 2 width x mlp, per token of either stream; single stream: Flux's fused
    linear1 and linear2, the same per token) and its attention (``queries`` x ``keys`` x width, twice: the logits
    and the values), for ``rows`` rows."""
    linear = tokens * (4 * width * width + 2 * width * mlp)
    attention = 2 * queries * keys * width
    return rows * (double + single) * (linear + attention)


def arithmetic(name: str, fraction: float) -> list[tuple[str, float]]:
    """Multiply-adds per step at 1 MP of the plain editor, the lock and the cached lock, a ``fraction`` of the
    image's tokens remade. The lock's attention as the pack computes it: the queries of what the step computes
    against their own keys and the inversion's kept ones of what it does not (the background's; the reference's
    where cached)."""
    real = REAL[name]
    text, image = real["text"], IMAGE_TOKENS
    refs, edited = image, round(fraction * image)
    whole = text + image + refs   # the plain step's tokens; the cached lock's keys (its own and the kept)
    geometry = {k: real[k] for k in ("width", "mlp", "double", "single", "rows")}
    plain = step_macs(**geometry, text=text, queries=whole, keys=whole, tokens=whole)
    computed, background = text + edited + refs, image - edited
    lock = step_macs(**geometry, text=text, queries=computed, keys=computed + background, tokens=computed)
    cached = step_macs(**geometry, text=text, queries=text + edited, keys=whole, tokens=text + edited)
    return [("plain editor", plain), ("lock", lock), ("lock, cache_reference", cached)]


#: RegionE's Kontext and Qwen-Image-Edit settings (``src/FluxKontext/main.py``, ``src/Qwen-Image/main.py``): of 28
#: steps, 6 warm-up steps and a refresh at step 16 computed on every token
WARMUP, REFRESHES = 6, 1


def arithmetic_table(steps: int = 28, skip: int = 4) -> str:
    lines = ["\n### Arithmetic per step at 1 MP, the real models' width and depth (multiply-adds, computed from the "
             "tokens each step computes)\n",
             "| model | region | plain editor | lock | lock with cache_reference, or a Region Lock cached step | one locked edit, inversion "
             f"included ({steps} inverting + {steps - skip} editing steps), vs {steps} plain steps: computed / cached "
             f"| one Region Lock edit with region_cache ({WARMUP} warm-up steps and {REFRESHES} refresh of {steps}) |",
             "|---|---|---|---|---|---|---|"]
    for name in REAL:
        for fraction in (0.1, 1 / 3, 0.5):
            (_, plain), (_, lock), (_, cached) = arithmetic(name, fraction)
            inversion = plain / REAL[name]["rows"]   # Flow Invert: every token, the empty instruction, no cfg
            whole = (steps * inversion + (steps - skip) * lock) / (steps * plain)
            whole_cached = (steps * inversion + (steps - skip) * cached) / (steps * plain)
            full = WARMUP + REFRESHES   # Region Lock: its cached step computes what the lock's cached step does
            region = (full * plain + (steps - full) * cached) / (steps * plain)
            lines.append(f"| {name} | {fraction:.0%} | {plain / 1e12:.1f} T (1.00x) | {lock / 1e12:.1f} T "
                         f"({lock / plain:.2f}x) | {cached / 1e12:.1f} T ({cached / plain:.2f}x) | {whole:.2f}x / "
                         f"{whole_cached:.2f}x | {region:.2f}x ({1 / region:.1f}x faster) |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--shallow", action="store_true", help="the tiny models' own depth (quick), not the real one")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    for family, name in (("flux-dev", "Flux.1 Kontext"), ("qwen-image", "Qwen-Image-Edit")):
        print(table(measure(host, family, args.steps, not args.shallow), name, args.steps))
    print(arithmetic_table())


if __name__ == "__main__":
    main()
