"""Cost of the attention editors: a patched source/target run against a stock run of the same
batch of 2, side by side, and the memory attention maps take, computed from the UNet layout.

    python -m workshop.benchmarks.attention_cost [--model toy-one-object|demo-sd1|demo-sdxl] [--steps 50] [--repeats 5]

Wall time is the median of interleaved runs, as a ratio (never an absolute time). Memory is
computed, float32: the transient cross-attention maps the Prompt-to-Prompt patch builds
inside its largest attention call (source and target rows; its self-attention replace attends
the target's values with the source's queries and keys in one call, holding no maps), the maps a per-step store of every cross-attention
layer would hold (what the original AttentionStore keeps across a run), and what the pack's
Attention Store keeps (one aggregated map per token).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"


def attention_layers(unet_config: dict, latent_side: int) -> list[tuple[int, int]]:
    """(tokens, heads) of every transformer layer of an SD UNet config at a latent side, from
    the config alone (no weights): encoder, middle, decoder."""
    mult, base = unet_config["channel_mult"], unet_config["model_channels"]
    depth = unet_config["transformer_depth"]
    depth_out = unet_config.get("transformer_depth_output") or [d for d in depth for _ in range(2)]
    res = unet_config["num_res_blocks"]
    res = res if isinstance(res, list) else [res] * len(mult)
    head = unet_config.get("num_head_channels", -1)

    def heads(ch):
        return ch // head if head and head > 0 else unet_config["num_heads"]

    layers, k = [], 0
    for level, m in enumerate(mult):
        for _ in range(res[level]):
            layers += [((latent_side >> level) ** 2, heads(base * m))] * depth[k]
            k += 1
    mid = unet_config.get("transformer_depth_middle", depth[-1])
    layers += [((latent_side >> (len(mult) - 1)) ** 2, heads(base * mult[-1]))] * max(mid, 0)
    depth_out = list(depth_out)
    for level, m in reversed(list(enumerate(mult))):
        for _ in range(res[level] + 1):   # the host pops the decoder's depths from the end
            layers += [((latent_side >> level) ** 2, heads(base * m))] * depth_out.pop()
    return layers


def memory_table(name: str, unet_config: dict, latent_side: int, steps: int, tokens: int = 77) -> str:
    layers = attention_layers(unet_config, latent_side)
    cross = [n * h * tokens * 4 for n, h in layers]
    peak = 2 * max(cross)   # self-attention replace runs as one attention call: no maps held
    store_all = sum(cross) * steps
    aggregated = tokens * max(latent_side // 4, 8) ** 2 * 4
    mb = lambda b: f"{b / 2 ** 20:,.1f} MiB"
    return (f"| {name} | {len(layers)} | {mb(peak)} | {mb(store_all)} | {mb(aggregated)} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    name = args.model
    model, clip, _ = builtin_model(host, name)
    side = 16
    lat = {"samples": torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0)) * 5.0}
    neg = encode(host, clip, "")

    def run(m, cond, latent):
        return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=args.steps, cfg=5.0,
                    sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=neg, latent_image=latent,
                    start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")

    editors = {
        "Attention Inject (replace, cross 0.8, self 0.4)": ("InvertEditAttentionInject", dict(
            mode="replace", reweight="", cross_replace=0.8, self_replace=0.4, local_blend=False)),
        "Attention Inject (refine + reweight)": ("InvertEditAttentionInject", dict(
            mode="refine", reweight="square:2", cross_replace=0.8, self_replace=0.4, local_blend=False)),
        "MasaCtrl (step 4, layer 6)": ("InvertEditMasaCtrl", dict(start_step=4, start_layer=6)),
        "Plug-and-Play (0.8 / 0.5)": ("InvertEditPlugAndPlay", dict(feature_injection=0.8, self_attention_injection=0.5)),
    }
    rows = []
    for label, (node, kw) in editors.items():
        m, cond, pair = call(host, node, model=model, clip=clip, latent=lat, source_prompt=SOURCE, target_prompt=TARGET, **kw)
        patched, stock = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter(); run(m, cond, pair); patched.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); run(model, cond, pair); stock.append(time.perf_counter() - t0)
        rows.append((label, statistics.median(patched) / statistics.median(stock)))

    print(f"\n### Attention editors: a patched source/target run vs a stock run of the same batch of 2, model '{name}', "
          f"{side}x{side} latent, {args.steps} steps, cfg 5, 1 CPU thread, median of {args.repeats}\n")
    print("| editor | wall time patched / stock |")
    print("|---|---|")
    for label, ratio in rows:
        print(f"| {label} | {ratio:.2f} |")

    import comfy.supported_models as sm
    print("\n### Attention-map memory computed from the UNet layout (float32, one image)\n")
    print("| model, resolution | attention layers | transient maps in the largest patched call (source + target) "
          "| every cross-attention map of every step (a per-step store, 50 steps) | the pack's Attention Store (aggregated) |")
    print("|---|---|---|---|---|")
    print(memory_table("SD1.5, 512x512", sm.SD15.unet_config | {"model_channels": 320, "channel_mult": [1, 2, 4, 4],
          "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "num_res_blocks": 2, "num_heads": 8, "num_head_channels": -1,
          "transformer_depth_middle": 1, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]}, 64, 50))
    print(memory_table("SDXL, 1024x1024", sm.SDXL.unet_config | {"num_res_blocks": 2, "channel_mult": [1, 2, 4],
          "num_head_channels": 64, "transformer_depth_middle": 10,
          "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10]}, 128, 50))


if __name__ == "__main__":
    main()
