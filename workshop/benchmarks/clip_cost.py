"""What a clip edit costs per frame against stock sampling of the same frames (issue 82): dispatched
operations per sampling step and multiply-adds per step, counted on a built-in model, and the
self-attention multiply-adds of Cross-Frame Attention computed at SD1.5's width.

    python -m workshop.benchmarks.clip_cost [--model demo-sd1|toy-one-object|...] [--frames 4] [--steps 5]

Counted (exact, repeatable, on the CPU): every aten operation dispatched (``dispatch_count.OpCounter``;
a GPU step is bound by issuing kernels, so its cost follows this count) and the multiply-adds torch's
``FlopCounterMode`` counts (matmuls, convolutions, and attention: the CPU's fused attention kernel by torch's own
SDPA formula, ``dispatch_count.flop_counter``), per step as the difference of a run of
``2 * steps`` and one of ``steps`` steps, divided by ``steps`` (what a run does once cancels). Each run
is a stock KSampler (Advanced) at cfg 7.5 on the clip's inverted LATENT of F frames (DDIM Invert; a
pair editor's rows after Direct Inversion and Apply Inversion): per frame is per frame of the output
clip, so a pair editor's 2F rows (source and target frames) count against stock F rows.

Computed: at SD1.5 512 px (a 64x64 latent; transformer blocks of 4096 tokens x 320 channels (5 blocks),
1024 x 640 (5), 256 x 1280 (5), 64 x 1280 (1)), a self-attention layer of N tokens and C channels costs
per frame ``N^2 C`` multiply-adds for the scores and ``N^2 C`` for the values, and ``4 N C^2`` for its
four projections; with A anchor frames the scores and values grow A times and the key and value
projections too (the patch hands attn1 the anchors' hidden states, which the layer projects).
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from workshop.benchmarks.dispatch_count import OpCounter, flop_counter
from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

SOURCE, TARGET = "a red circle and a blue square", "a yellow circle and a blue square"

PAIR_EDITORS = {
    "Attention Inject (replace 0.8 / 0.4, local blend off)": (
        "InvertEditAttentionInject", dict(mode="replace", reweight="", cross_replace=0.8, self_replace=0.4,
                                          local_blend=False)),
    "Plug-and-Play (0.8 / 0.5)": ("InvertEditPlugAndPlay", dict(feature_injection=0.8, self_attention_injection=0.5)),
    "MasaCtrl (step 2, layer 4)": ("InvertEditMasaCtrl", dict(start_step=2, start_layer=4)),
}

#: SD1.5 at 512 px: (tokens, channels, transformer blocks) of each level
SD15_LEVELS = ((4096, 320, 5), (1024, 640, 5), (256, 1280, 5), (64, 1280, 1))


def inverted_set(host, model, source, count: int, steps: int, side: int) -> dict:
    """A random set of ``count`` latents inverted (DDIM Invert, Direct Inversion) at ``steps`` and ``2 * steps``
    steps: ``{n: (direct inversion, inverted LATENT)}``."""
    latent = {"samples": torch.randn(count, 4, side, side, generator=torch.Generator().manual_seed(0)) * 5.0}
    inverted = {}
    for n in (steps, 2 * steps):
        inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=source, steps=n,
                           scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
        inverted[n] = (call(host, "InvertEditDirectInversion", inversion=inv)[0], lat)
    return inverted


def step_counter(host, neg, steps: int, cfg: float):
    """``per_step(label, make)``: a row of dispatched ops and multiply-adds per step of stock KSampler (Advanced)
    runs of ``make(n) -> (model, positive, latent)`` at ``steps`` and ``2 * steps`` steps (the difference / steps)."""
    def run(m, cond, lat, n) -> tuple[int, int]:
        with flop_counter() as flops, OpCounter() as ops:
            call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=n, cfg=cfg,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=neg, latent_image=lat,
                 start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
        return ops.total, flops.get_total_flops() // 2   # multiply-adds

    def per_step(label: str, make) -> dict:
        (ops1, mac1), (ops2, mac2) = (run(*make(n), n) for n in (steps, 2 * steps))
        return {"label": label, "ops": (ops2 - ops1) / steps, "macs": (mac2 - mac1) / steps}
    return per_step


def measure(host, model, clip, frames: int, steps: int, side: int = 16, cfg: float = 7.5) -> list[dict]:
    source, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    inverted = inverted_set(host, model, source, frames, steps, side)
    per_step = step_counter(host, neg, steps, cfg)

    def cross(m, n):
        return call(host, "InvertEditCrossFrameAttention", model=m, latent=inverted[n][1],
                    anchors="first and previous")[0]

    def pair(node, kw, with_cross):
        def make(n):
            direct, lat = inverted[n]
            m, cond, pair_lat = call(host, node, model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                                     target_prompt=TARGET, **kw)
            m = cross(m, n) if with_cross else m
            return call(host, "InvertEditApplyInversion", model=m, inversion=direct)[0], cond, pair_lat
        return make

    rows = [per_step(f"stock KSampler, the clip's {frames} frames", lambda n: (model, source, inverted[n][1])),
            per_step(f"Cross-Frame Attention alone, {frames} frames (first and previous)",
                     lambda n: (cross(model, n), source, inverted[n][1]))]
    for label, (node, kw) in PAIR_EDITORS.items():
        rows.append(per_step(f"{label}, frame by frame ({2 * frames} rows)", pair(node, kw, False)))
        rows.append(per_step(f"{label} + Cross-Frame Attention ({2 * frames} rows)", pair(node, kw, True)))
    fatezero = dict(mode="refine", cross_replace=0.8, self_replace=0.6, blend_words="circle", blend_threshold=0.3)
    rows.append(per_step(f"FateZero Fusion (0.8 / 0.6, blend 'circle'; sparse-causal; {2 * frames} rows + {frames} "
                         f"while blending)", pair("InvertEditFateZero", fatezero, False)))
    for r in rows:
        r["ops_ratio"], r["macs_ratio"] = r["ops"] / rows[0]["ops"], r["macs"] / rows[0]["macs"]
    return rows


def sd15_attention(anchors: int) -> tuple[float, float]:
    """(self-attention multiply-adds per frame and step with ``anchors`` anchor frames, without) at SD1.5
    512 px, in GMAC, for one UNet row (multiply by 2 for classifier-free guidance)."""
    def layer(n: int, c: int, a: int) -> float:
        return 2 * a * n * n * c + (2 + 2 * a) * n * c * c
    total = sum(blocks * layer(n, c, anchors) for n, c, blocks in SD15_LEVELS) / 1e9
    plain = sum(blocks * layer(n, c, 1) for n, c, blocks in SD15_LEVELS) / 1e9
    return total, plain


def table(rows: list[dict], name: str, frames: int, steps: int, side: int = 16) -> str:
    lines = [f"\n### A clip edit's cost per step, model '{name}', {frames} frames of a {side}x{side} latent, cfg 7.5, "
             f"per step = (run of {2 * steps} steps - run of {steps}) / {steps}\n",
             "| run | aten ops / step | per output frame | vs stock | multiply-adds / step | per output frame "
             "| vs stock |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['ops'] / frames:,.0f} | {r['ops_ratio']:.2f}x "
                     f"| {r['macs'] / 1e6:,.1f} M | {r['macs'] / frames / 1e6:,.2f} M | {r['macs_ratio']:.2f}x |")
    lines += ["\n### Self-attention (attn1) multiply-adds per frame and UNet row at SD1.5 512 px (computed)\n",
              "| anchors | attn1 GMAC / frame | vs stock attn1 | memory held per call (largest layer, one row, fp16) |",
              "|---|---|---|---|"]
    for label, a in (("stock (own frame)", 1), ("first (Text2Video-Zero)", 1), ("first and previous (sparse-causal)", 2),
                     ("first, previous and self", 3)):
        total, plain = sd15_attention(a)
        held = "none (its own keys)" if label.startswith("stock") else \
            f"{a * 4096 * 320 * 2 / 2**20:.1f} MiB of anchor hidden states"
        lines.append(f"| {label} | {total:.1f} | {total / plain:.2f}x | {held} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    model, clip, _ = builtin_model(host, args.model)
    print(table(measure(host, model, clip, args.frames, args.steps), args.model, args.frames, args.steps))


if __name__ == "__main__":
    main()
