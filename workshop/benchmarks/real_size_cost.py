"""What the pack's editors cost on real-sized Stable Diffusion UNets, as ratios to stock runs
measured side by side in one process, with UNet rows counted and peak memory measured.

    python -m workshop.benchmarks.real_size_cost --family sd15|sdxl [--repeats 2] [--only GROUPS] [--json F]
    python -m workshop.benchmarks.real_size_cost --table sd15.json sdxl.json    # the markdown table
    python -m workshop.benchmarks.real_size_cost --family sd15 --only training  # DreamBooth LoRA's memory

The UNets are the host's own SD1.5 (860 M parameters, 64x64 latent = 512 px) and SDXL (2.6 G,
128x128 latent = 1024 px) architectures with seeded random weights (none can be downloaded
here), float32, on the CPU, one thread. Cost does not depend on the weights. The text encoders
are the tiny test ones widened to the real context width (768; 768 + 1280 with a 1280 pooled
vector for SDXL): prompts only need the right shapes and the real tokenizer.

Each measurement is one sampling step (KSamplerAdvanced, ddim, ``end_at_step`` 1) so that a
row costs what a row costs at 512 or 1024 px; every editor is configured to be active at that
step (MasaCtrl from step 0), which is its most expensive step. Editors run at cfg 1 (the two
conditional rows, the rows Prompt-to-Prompt edits): with cfg > 1 the unconditional rows add
stock cost and the ratio falls. Time is the CPU time of the sampling thread (torch runs on it
with one thread), so other work on a shared machine does not enter the figure; the ratio is of
the medians of interleaved patched / stock runs. Peak
memory is the resident set's peak above its level before the run, read every 2 ms, with glibc
told to return large blocks at once (``MALLOC_MMAP_THRESHOLD_``; the script re-executes itself
with it), so the figure follows tensors' lives.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import torch

from workshop.headless.boot import boot
from workshop.headless.calls import call, encode

SOURCE, TARGET = "a photo of a cat sitting on a bench", "a photo of a dog sitting on a bench"
MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"


def real_specs(tiny):
    """SD1.5 and SDXL at their real sizes (the host's own configs, as ``comfy.model_detection``
    states them), as the pack's ``FamilySpec``; text encoders tiny but at the real widths."""
    import comfy.model_base
    import comfy.sd1_clip
    import comfy.sdxl_clip
    import comfy.supported_models as sm
    common = {"use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4,
              "use_spatial_transformer": True, "legacy": False, "use_temporal_attention": False,
              "use_temporal_resblock": False}
    sd15 = tiny.FamilySpec(
        name="sd15-real", config_class=sm.SD15,
        unet_config=common | {"adm_in_channels": None, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
                              "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4],
                              "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768,
                              "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]},
        unet_overrides={"num_heads": 8, "num_head_channels": -1}, model_type=comfy.model_base.ModelType.EPS,
        clip_target=(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel),
        text_configs={"clip_l_model_config": tiny._text_config(768, 12, "quick_gelu")})
    sdxl = tiny.FamilySpec(
        name="sdxl-real", config_class=sm.SDXL,
        unet_config=common | {"num_classes": "sequential", "adm_in_channels": 2816, "model_channels": 320,
                              "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
                              "channel_mult": [1, 2, 4], "transformer_depth_middle": 10,
                              "use_linear_in_transformer": True, "context_dim": 2048,
                              "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10]},
        unet_overrides={"num_heads": -1, "num_head_channels": 64}, model_type=comfy.model_base.ModelType.EPS,
        clip_target=(comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel),
        text_configs={"clip_l_model_config": tiny._text_config(768, 12, "quick_gelu"),
                      "clip_g_model_config": tiny._text_config(1280, 20, "gelu")})
    return {"sd15": (sd15, 64), "sdxl": (sdxl, 128),   # and the tiny test models, to try the script quickly
            "tiny-sd1": (tiny.SPECS["sd1"], 16), "tiny-sdxl": (tiny.SPECS["sdxl"], 16)}


class PeakMemory:
    """Peak resident memory above the level at entry, polled every 2 ms (Linux /proc)."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.extra = self.peak - self.start


class Rows:
    """Counts UNet rows: forward rows, and rows run with gradients (each is a forward and a backward)."""

    def __init__(self, unet: torch.nn.Module):
        self.forward = self.with_grad = 0
        unet.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        n = args[0].shape[0]
        self.forward += n
        self.with_grad += n if torch.is_grad_enabled() else 0

    def reset(self) -> None:
        self.forward = self.with_grad = 0


def measure(fn, rows: Rows) -> dict:
    rows.reset()
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return {"seconds": cpu, "wall_seconds": seconds, "peak_extra_bytes": mem.extra, "rows": rows.forward, "grad_rows": rows.with_grad}


def side_by_side(pairs: dict, rows: Rows, repeats: int) -> dict:
    """{label: (patched fn, stock fn)} -> ratios; each repeat runs stock then patched, interleaved."""
    out = {}
    next(iter(pairs.values()))[1]()   # warm-up (first-call allocations and caches), not counted
    for label, (patched, stock) in pairs.items():
        got = {"patched": [], "stock": []}
        for _ in range(repeats):
            got["stock"].append(measure(stock, rows))
            got["patched"].append(measure(patched, rows))
        med = {k: statistics.median(m["seconds"] for m in v) for k, v in got.items()}
        out[label] = {
            "time_ratio": med["patched"] / med["stock"],
            "rows": (got["patched"][0]["rows"], got["stock"][0]["rows"]),
            "grad_rows": got["patched"][0]["grad_rows"],
            "extra_memory_mib": (max(m["peak_extra_bytes"] for m in got["patched"])
                                 - max(m["peak_extra_bytes"] for m in got["stock"])) / 2 ** 20,
            "stock_peak_mib": max(m["peak_extra_bytes"] for m in got["stock"]) / 2 ** 20,
            "stock_seconds": med["stock"],
        }
        print(f"  {label}: {json.dumps(out[label])}", flush=True)
    return out


def table(results: list[dict]) -> str:
    """The measured JSONs (one per family) as one markdown table."""
    lines = ["| model | what | UNet rows (patched / stock) | with gradients | CPU time, patched / stock | "
             "peak memory above stock | stock's peak above idle |", "|---|---|---|---|---|---|---|"]
    for r in results:
        name = {"sd15": "SD1.5, 512 px", "sdxl": "SDXL, 1024 px"}.get(r["family"], r["family"])
        for group in ("editors", "guiders", "null_text", "whole_edit", "training"):
            for label, m in r.get(group, {}).items():
                lines.append(f"| {name} | {label} | {m['rows'][0]} / {m['rows'][1]} | {m['grad_rows']} | "
                             f"{m['time_ratio']:.2f} | {m['extra_memory_mib'] / 1024:+.2f} GiB | "
                             f"{m['stock_peak_mib'] / 1024:.2f} GiB |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", nargs="+", default=None, help="print the table of these --json files and stop")
    ap.add_argument("--family", choices=["sd15", "sdxl", "tiny-sd1", "tiny-sdxl"], default="sd15")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", default="",
                    help="comma-separated groups: editors, guiders, null_text, whole_edit, training")
    ap.add_argument("--match", default="", help="only the editors (or training ranks: 'rank 4') whose label contains this")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.table:
        print(table([json.load(open(f)) for f in args.table]))
        return
    if os.environ.get(MMAP_ENV) is None:   # glibc reads it at start: re-execute with it
        os.execvpe(sys.executable, [sys.executable, "-m", "workshop.benchmarks.real_size_cost", *sys.argv[1:]],
                   os.environ | {MMAP_ENV: "65536", "MALLOC_TRIM_THRESHOLD_": "65536"})
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    tiny = host.pack.demo.tiny_models
    spec, side = real_specs(tiny)[args.family]
    t0 = time.time()
    model, clip = tiny.build_unet(spec, seed=0), tiny.build_clip(spec, seed=0)
    params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    print(f"{args.family}: {params / 1e6:.0f} M UNet parameters, built in {time.time() - t0:.0f} s", flush=True)
    rows = Rows(model.model.diffusion_model)
    groups = set(filter(None, args.only.split(","))) or {"editors", "guiders", "null_text", "whole_edit", "training"}
    g = torch.Generator().manual_seed(0)
    latent = {"samples": torch.randn(1, 4, side, side, generator=g)}
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    results: dict = {"family": args.family, "latent": side, "unet_parameters": params, "threads": 1}

    def one_step(m, cond, negative, lat, cfg=1.0, steps=50, end=1):
        return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=steps, cfg=cfg,
                    sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=negative, latent_image=lat,
                    start_at_step=0, end_at_step=end, return_with_leftover_noise="enable")

    if "editors" in groups:
        editors = {
            "Attention Inject (replace, cross 0.8, self 0.4)": ("InvertEditAttentionInject", dict(
                mode="replace", reweight="", cross_replace=0.8, self_replace=0.4, local_blend=False)),
            "Attention Inject (refine + reweight)": ("InvertEditAttentionInject", dict(
                mode="refine", reweight="dog:2", cross_replace=0.8, self_replace=0.4, local_blend=False)),
            "MasaCtrl (from step 0, layer 10)": ("InvertEditMasaCtrl", dict(start_step=0, start_layer=10)),
            "Plug-and-Play (0.8 / 0.5)": ("InvertEditPlugAndPlay", dict(feature_injection=0.8,
                                                                          self_attention_injection=0.5)),
        }
        pairs = {}
        editors = {label: e for label, e in editors.items() if args.match in label}
        for label, (node, kw) in editors.items():
            m, cond, pair = call(host, node, model=model, clip=clip, latent=latent, source_prompt=SOURCE,
                                 target_prompt=TARGET, **kw)
            pairs[label] = (lambda m=m, c=cond, p=pair: one_step(m, c, neg, p),
                            lambda c=cond, p=pair: one_step(model, c, neg, p))
        print("editors (one step, the pair at cfg 1, vs stock on the same batch of 2):", flush=True)
        results["editors"] = side_by_side(pairs, rows, args.repeats)

    if "guiders" in groups:
        sigmas = call(host, "BasicScheduler", model=model, scheduler="ddim_uniform", steps=50, denoise=1.0)[0][:2]
        sampler = call(host, "KSamplerSelect", sampler_name="ddim")[0]

        def custom(guider):
            return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                        sampler=sampler, sigmas=sigmas, latent_image=latent)

        cfg_guider = call(host, "CFGGuider", model=model, positive=pos, negative=neg, cfg=7.5)[0]
        texts = ["a dog", "sunglasses"]
        pairs = {}
        for n in (1, 2):
            sega = ledits = None
            for text in texts[:n]:
                sega = call(host, "InvertEditSEGAConcept", conditioning=encode(host, clip, text), direction="add",
                            scale=5.0, warmup=0, cooldown=0, threshold=0.9, weight=1.0, concepts=sega)[0]
                ledits = call(host, "InvertEditLEDITSConcept", clip=clip, text=text, direction="add", scale=5.0,
                              warmup=0, cooldown=0, threshold=0.9, weight=1.0, concepts=ledits)[0]
            sega_g = call(host, "InvertEditSEGAGuidance", model=model, positive=pos, negative=neg, cfg=7.5,
                          concepts=sega, momentum_scale=0.1, momentum_beta=0.4)[0]
            ledits_g = call(host, "InvertEditLEDITSGuidance", model=model, negative=neg, concepts=ledits,
                            mask="intersect")[0]
            pairs[f"SEGA, {n} concept(s), vs CFG"] = (lambda g=sega_g: custom(g), lambda: custom(cfg_guider))
            pairs[f"LEDITS++ (intersect), {n} concept(s), vs CFG"] = (lambda g=ledits_g: custom(g),
                                                                       lambda: custom(cfg_guider))
        print("guiders (one step, vs a stock CFG step of 2 rows):", flush=True)
        results["guiders"] = side_by_side(pairs, rows, args.repeats)

    if "null_text" in groups:
        steps = 2

        def ddim_invert():
            return call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=steps,
                        scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]

        inv = ddim_invert()

        def null_text(early_stop):
            return call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=pos, negative=neg,
                        cfg=7.5, inner_steps=10, learning_rate=0.01, early_stop=early_stop)

        print(f"Null-Text Optimize ({steps} timesteps, 10 inner steps) vs DDIM Invert of the same steps:", flush=True)
        results["null_text"] = side_by_side({"Null-Text Optimize, fixed 10 inner steps (paper's recipe)":
                                             (lambda: null_text(False), ddim_invert)}, rows, 1)

    if "whole_edit" in groups:
        steps = 2

        def direct_p2p():
            inv, inverted, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos,
                                    steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
            direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
            m, cond, pair = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=inverted,
                                 source_prompt=SOURCE, target_prompt=TARGET, mode="replace", reweight="",
                                 cross_replace=0.4, self_replace=0.6, local_blend=False)
            m = call(host, "InvertEditApplyInversion", model=m, inversion=direct)[0]
            return one_step(m, cond, neg, pair, cfg=7.5, steps=steps, end=10000)

        def t2i():
            return call(host, "KSampler", model=model, seed=0, steps=steps, cfg=7.5, sampler_name="ddim",
                        scheduler="ddim_uniform", positive=pos, negative=neg, latent_image=latent, denoise=1.0)

        print(f"whole edit ({steps} steps, cfg 7.5) vs one stock text-to-image run of the same steps:", flush=True)
        results["whole_edit"] = side_by_side({"DDIM Invert + Direct + Prompt-to-Prompt vs stock t2i":
                                              (direct_p2p, t2i)}, rows, args.repeats)

    if "training" in groups:
        # DreamBooth LoRA at issue 28's ranks: two steps of one instance and one class row (the prior loss on,
        # batch_size 1: the two rows run forward and backward), against one stock sampling step of the same 2 rows
        steps = 2
        pair = {"samples": latent["samples"].repeat(2, 1, 1, 1)}
        photos = {"samples": torch.randn(2, 4, side, side, generator=g)}
        instance, klass = encode(host, clip, "a photo of sks dog"), encode(host, clip, "a photo of dog")

        def dreambooth(rank):
            return call(host, "InvertEditDreamBoothLoRA", model=model, instance_images=photos, instance_prompt=instance,
                        steps=steps, learning_rate=1e-4, rank=rank, prior_loss_weight=1.0, batch_size=1, seed=0,
                        class_images=photos, class_prompt=klass)

        pairs = {f"DreamBooth LoRA rank {rank}, {steps} steps, prior on (1 + 1 rows), vs a stock step of 2 rows":
                 (lambda rank=rank: dreambooth(rank), lambda: one_step(model, pos, neg, pair))
                 for rank in (4, 8, 16) if args.match in f"rank {rank}"}
        print("training (DreamBooth LoRA) vs one stock sampling step of the same rows:", flush=True)
        results["training"] = side_by_side(pairs, rows, 1)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
