"""The flow editors' cost at real size on a GPU, with the host's default GPU settings: seconds per
model evaluation against the stock euler sampler on the same rows (issues 26 and 27: each method's
per-evaluation time, each editor's step <= 1.1x a stock step; KV-Edit's cached keys and values per
megapixel).

    python -m workshop.benchmarks.gpu_flow_cost [--families flux-dev,sd3] [--sides 1024,512] [--steps 6] [--json F]
    python -m workshop.benchmarks.gpu_flow_cost --device cpu --tiny      # the code path, on a CPU, in a minute
    python -m workshop.benchmarks.gpu_flow_cost --table a.json [b.json]  # the markdown table of saved runs

Models: Flux.1 dev (19 double- and 38 single-stream blocks, hidden 3072, 24 heads, guidance embedding:
11.9 G parameters), SD3 medium (24 joint blocks, hidden 1536: 2.0 G) and Qwen-Image (60 joint blocks, hidden
3072 over a 3584-wide text: 20.4 G; its text encoder one Qwen2.5-VL layer at 3584), the host's own classes
(``comfy.supported_models.Flux`` / ``SD3`` / ``QwenImage``) in the dtype the host picks for a checkpoint of that size
on this device (``hostkit.loaders.host_unet_dtype``: on an H100, Flux bf16 as its checkpoints ship), in
a ModelPatcher on the host's devices, so that sampling loads it as Load Diffusion Model's output is
loaded. Weights are random (std 1/sqrt(fan_in), the output layer x 0.3), drawn on the device in
float32 and copied into the host's weights: 24 GB that cannot be downloaded here and are never
written to disk. The text encoders are the tiny flow models' (``tiny_flow_models``) at the real
context widths (T5 4096 wide, one layer; CLIP-L 768, CLIP-G 1280): the sampling step sees the real
text tokens' count (Flux: T5 padded to 256 as the host pads it; SD3: the 77 CLIP tokens, without T5's
256, so SD3's steps are a little cheaper than a user's) and width; encoding is not timed.

Runs (each on the latent of a ``--sides`` picture, ``--steps`` steps (default 4) of SamplerCustomAdvanced,
the run's set-up included; the baselines warmed up and timed first, then each editor
warmed up once and timed beside its baseline, the median of ``--repeats`` (default 2) rounds; seconds per
model evaluation = run / evaluations): stock euler (BasicGuider) on 1 and 2 rows; the Flow Sampler's
solvers (rf-solver, fireflow; euler's step is stock euler's); RF-Inversion's patch (eta at every step); FlowEdit (acting at every step, its two rows in one
call) against stock CFGGuider at cfg 1 on 2 rows; on Flux, Share Values (RF-Solver-Edit, every step and
single block), KV-Edit (every step and block, the cache on the device and on the CPU), Stable Flow (every block vital, the pair); Joint
Attention Inject at every step and block, and at the node's defaults without and with its local
blend (every block, and on Flux the double-stream blocks only), on the pair; and the DiT driver alone (every
block patched with a policy that attends as stock: what any DiT policy pays before its own operations). Inversions are built once per case outside the timing. ``finite`` says whether the
sampled latent is finite (random weights at real depth); ``peak`` is ``max_memory_allocated`` during
the runs. The JSON is rewritten after each case, so a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from workshop.benchmarks.gpu_cost import free_memory, host_defaults, median_runs, synchronize, tables_or_families, timed

SOURCE, TARGET = "a red circle and a blue square", "a yellow circle and a blue square"
FAMILIES = ("flux-dev", "sd3", "qwen-image")
NAMES = {"flux-dev": "Flux.1 dev", "sd3": "SD3 medium", "qwen-image": "Qwen-Image"}
GOAL = 1.1   # each editor's evaluation <= 1.1x a stock evaluation on the same rows
#: The real models' configs, over the tiny flow models' (``tiny_flow_models.SPECS``).
REAL = {
    "flux-dev": dict(hidden_size=3072, num_heads=24, depth=19, depth_single_blocks=38, axes_dim=[16, 56, 56],
                     vec_in_dim=768, context_in_dim=4096),
    "sd3": dict(depth=24, num_blocks=24, adm_in_channels=2048, pos_embed_max_size=192, num_patches=192 ** 2,
                context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096,
                                                                                 "out_features": 1536}}),
    # Qwen-Image: 60 joint blocks, 24 heads of 128, over Qwen2.5-VL's 3584-wide text (20.4 G parameters)
    "qwen-image": dict(num_layers=60, attention_head_dim=128, num_attention_heads=24, joint_attention_dim=3584,
                       axes_dims_rope=(16, 56, 56)),
}
#: The text encoders at the widths the denoisers read (one layer: encoding is not timed).
TEXT = {
    "flux-dev": {"clip_l_model_config": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                             projection_dim=768, num_hidden_layers=1),
                 "t5xxl_model_config": dict(d_model=4096, d_kv=64, num_heads=4, d_ff=512, num_layers=1)},
    "sd3": {"clip_l_model_config": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                        projection_dim=768, num_hidden_layers=3),
            "clip_g_model_config": dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                                        projection_dim=1280, num_hidden_layers=3)},
    "qwen-image": {"qwen25_7b_model_config": dict(hidden_size=3584, intermediate_size=512, num_hidden_layers=1,
                                                  num_attention_heads=28, num_key_value_heads=4)},
}


# ----------------------------------------------------------------------------- the models

def _fan_in_std(shape: torch.Size) -> float:
    return 1.0 / math.sqrt(max(1, math.prod(shape[1:])))


@torch.no_grad()
def random_flow_model(host, family: str, tiny: bool, seed: int = 0):
    """The family's denoiser at real size (``tiny``: the tiny flow model's size) in the dtype the host
    picks for it here, as a frozen ModelPatcher, and what was built: (patcher, {"parameters", "dtype",
    "manual_cast", "build_seconds"})."""
    from invertedit.demo.tiny_flow_models import SD3_SAMPLE_SIZE, SPECS, sincos_pos_embed
    from invertedit.hostkit import loaders
    import comfy.model_management as mm

    started = time.perf_counter()
    spec = SPECS[family]
    unet_config = dict(spec.unet_config) | ({} if tiny else REAL[family])
    config = loaders.model_config(spec.config_class, unet_config, spec.unet_overrides)
    config.set_inference_dtype(torch.float32, None)
    with torch.device("meta"):   # shapes only: a float32 Flux would be 48 GB
        shapes = {k: v.shape for k, v in loaders._base_model(config, spec.model_type).diffusion_model.state_dict().items()}
    shipped = (torch.float32 if tiny else torch.float16 if family == "sd3" else torch.bfloat16)   # as shipped
    meta = {k: torch.empty(s, dtype=shipped, device="meta") for k, s in shapes.items()}
    dtype, manual_cast = loaders.host_unet_dtype(config, meta)
    model = loaders._base_model(config, spec.model_type)
    net = model.diffusion_model
    device = mm.get_torch_device()
    g = torch.Generator(device=device).manual_seed(seed)
    for name, p in net.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.ndim >= 2 and leaf == "weight" or "embed" in name and p.ndim >= 2:
            std, mean = _fan_in_std(p.shape), 0.0
        elif leaf in ("scale", "weight"):   # norms
            std, mean = 0.1, 1.0
        else:
            std, mean = 0.05, 0.0
        value = torch.randn(p.shape, generator=g, device=device, dtype=torch.float32).mul_(std).add_(mean)
        if "final_layer.linear" in name or name.startswith("proj_out"):
            value.mul_(0.3)
        p.copy_(value.to(p.dtype))
    if family == "sd3":
        net.pos_embed.copy_(sincos_pos_embed(net.hidden_size, net.pos_embed_max_size,
                                             SD3_SAMPLE_SIZE // net.patch_size).to(net.pos_embed.dtype))
    patcher = loaders.frozen_patcher(model)
    return patcher, {"parameters": sum(math.prod(s) for s in shapes.values()), "dtype": str(dtype),
                     "manual_cast": str(manual_cast), "build_seconds": time.perf_counter() - started}


def text_encoder(family: str, tiny: bool):
    """The tiny flow model's text encoders of ``family``, at the widths the real denoiser reads."""
    from invertedit.demo.tiny_flow_models import QWEN_VISION, SPECS
    from invertedit.demo.tiny_models import _generator, init_weights
    from invertedit.hostkit import loaders

    spec = SPECS[family]
    configs = {k: dict(v) | ({} if tiny else TEXT[family].get(k, {})) for k, v in spec.text_configs.items()}
    clip = loaders.text_encoder(spec.clip_target, configs)
    if family == "qwen-image":   # the host builds Qwen2.5-VL's vision tower at its real size whatever the config
        loaders.replace_qwen_vision_tower(clip, output_hidden_size=configs["qwen25_7b_model_config"]["hidden_size"],
                                          **QWEN_VISION)
    skip = tuple(n for n, _ in clip.cond_stage_model.named_parameters() if n.endswith("logit_scale"))
    init_weights(clip.cond_stage_model, _generator(spec.name, "gpu-flow-cost-clip", 0), skip=skip)
    return clip


# ----------------------------------------------------------------------------- the runs

def cases(host, family: str, model, clip, latent: torch.Tensor, steps: int) -> dict:
    """{label: (prepare, rows, evaluations a step, counted against the goal, baseline label)};
    ``prepare()`` builds what the case needs once (its inversion) and returns (make, extra): ``make()``
    builds (guider, sampler, latent) for one run of ``steps`` steps, ``extra`` a dict for the row.
    Prepared one case at a time, so that one inversion's cache is held at a time."""
    from workshop.headless.calls import call, encode

    flux = family.startswith("flux")
    target, source, empty = encode(host, clip, TARGET), encode(host, clip, SOURCE), encode(host, clip, "")
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    one, two = latent[:1], latent
    b1, b2 = "stock euler, 1 row", "stock euler, 2 rows"

    def basic(m, cond=target, sampler=euler, lat=two):
        return lambda: (call(host, "BasicGuider", model=m, conditioning=cond)[0], sampler, lat)

    def ready(make, extra=None):
        return lambda: (make, extra or {})

    out = {b1: (ready(basic(model, lat=one)), 1, 1, False, b1), b2: (ready(basic(model)), 2, 1, False, b2)}
    stock_cfg = "stock CFGGuider cfg 1, 2 rows"
    out[stock_cfg] = (ready(lambda: (call(host, "CFGGuider", model=model, positive=target, negative=empty, cfg=1.0)[0],
                                     euler, two)), 2, 1, False, stock_cfg)
    # evaluations a step: rf-solver 2; fireflow 1, and one more in the run's first step (no velocity to reuse yet)
    for solver, nfe in (("rf-solver", 2), ("fireflow", (steps + 1) / steps)):   # euler's is stock euler's
        sampler = call(host, "InvertEditFlowSampler", solver=solver)[0]
        out[f"Flow Sampler {solver}"] = (ready(basic(model, sampler=sampler)), 2, nfe, True, b2)

    def rf_inversion():
        inversion = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": two}, positive=empty,
                         steps=steps, scheduler="simple", gamma=0.5, guidance=0.0, seed=0)[0]
        return basic(call(host, "InvertEditRFInversion", model=model, inversion=inversion, eta=0.9, start=0.0,
                          stop=1.0, eta_decay=0.0)[0]), {}

    out["RF-Inversion patch (eta at every step) + stock euler"] = (rf_inversion, 2, 1, True, b2)
    kw = dict(source_guidance=1.5, target_guidance=5.5) if flux else dict(
        source_guidance=3.5, target_guidance=13.5, negative=empty)
    flowedit = call(host, "InvertEditFlowEdit", model=model, source=source, target=target, n_max=steps, n_min=0,
                    n_avg=1, **kw)[0]
    rows = 2 if flux else 4
    if not flux:   # SD3: each prompt with its classifier-free guidance, 4 rows; stock CFG 3.5 on 2 latents
        stock_cfg = "stock CFGGuider cfg 3.5, 2 latents (4 rows)"
        out[stock_cfg] = (ready(lambda: (call(host, "CFGGuider", model=model, positive=target, negative=empty,
                                              cfg=3.5)[0], euler, two)), 4, 1, False, stock_cfg)
    out["FlowEdit (acting at every step, n_avg 1)"] = (ready(lambda: (flowedit, euler, one)), rows, 1, True, stock_cfg)
    if flux or family == "qwen-image":   # Share Values and KV-Edit: Flux.1 and Qwen-Image
        def share_values():
            kept = call(host, "InvertEditFlowInvert", model=model, latent={"samples": one}, positive=target,
                        solver="rf-solver", steps=steps, scheduler="simple", guidance=1.0, share_steps=steps,
                        share_from_block=0, keep_values_on="device")[0]
            return basic(call(host, "InvertEditShareValues", model=model, inversion=kept)[0], lat=one,
                         sampler=call(host, "InvertEditFlowSampler", solver="rf-solver")[0]), {}

        every = "single block" if flux else "joint block"
        out[f"Share Values (every step and {every}) + Flow Sampler rf-solver"] = (share_values, 1, 2, True, b1)
        side = latent.shape[-1] * 8
        mask = torch.zeros(1, side, side)
        mask[:, side // 4: 3 * side // 4, side // 4 + side // 16: 3 * side // 4 - side // 16] = 1.0

        def kv_edit(place):
            def prepare():
                before = torch.cuda.memory_allocated() if torch.cuda.is_available() else None
                kv = call(host, "InvertEditFlowInvert", model=model, latent={"samples": one}, positive=target,
                          solver="euler", steps=steps, scheduler="simple", guidance=1.0, keep_keys_values=True,
                          keep_values_on=place)[0]
                extra = {"kv_cache_bytes": _tensor_bytes(kv), "kv_cache_rows": 1, "kv_cache_on": place,
                         "kv_device_bytes_after": None if before is None else torch.cuda.memory_allocated() - before}
                return basic(call(host, "InvertEditKVEdit", model=model, inversion=kv, mask=mask, skip_steps=0,
                                  attn_scale=1.0, re_init=True, seed=0)[0], lat=one), extra
            return prepare

        for place in ("device", "cpu"):
            out[f"KV-Edit (every step and block, attn_scale 1, cache on {place}) + stock euler"] = (
                kv_edit(place), 1, 1, True, b1)
    if flux:
        guided = call(host, "FluxGuidance", conditioning=target, guidance=1.0)[0]

        def stable_flow():
            sf = call(host, "InvertEditStableFlowInvert", model=model, latent={"samples": one}, positive=guided,
                      steps=steps, scheduler="simple", guidance=1.0, nudge=1.15)[0]
            blocks = host.pack.hostkit.dit_attention.dit_blocks
            every = {kind: ", ".join(str(i) for i in range(len(blocks(model, (kind,)))))
                     for kind in ("double_block", "single_block")}
            m, pair, _ = call(host, "InvertEditStableFlow", model=model, inversion=sf, source=guided, target=target,
                              double_blocks=every["double_block"], single_blocks=every["single_block"])
            return basic(m, cond=pair), {}

        out["Stable Flow (every block vital, the pair) + stock euler"] = (stable_flow, 2, 1, True, b2)
    inverted: list = []

    def joint(cross, self_, blend):
        def prepare():
            if not inverted:
                inverted.append(call(host, "InvertEditFlowInvert", model=model, latent={"samples": one},
                                     positive=source, solver="euler", steps=steps, scheduler="simple",
                                     guidance=1.0)[0])
            m, pair, _ = call(host, "InvertEditJointAttentionInject", model=model, clip=clip, inversion=inverted[0],
                              source_prompt=SOURCE, target_prompt=TARGET, mode="replace", reweight="",
                              cross_replace=cross, self_replace=self_, blocks="all", guidance=3.5,
                              blend_source_words="circle" if blend else "", blend_target_words="circle" if blend else "",
                              blend_blocks=blend or "all", local_blend=bool(blend))
            return basic(m, cond=pair), {}
        return prepare

    def driver_alone():   # the block patches and the attention override with nothing edited: what every
        dit = host.pack.hostkit.dit_attention   # DiT policy pays before its own operations

        class AttendAsStock(host.pack.attention.policy.AttentionPolicy):
            pair = False

            def attention(self, q, k, v, where, state):
                return where.attend(q, k, v)

        patched = model.clone()
        dit.install_dit_policy(patched, AttendAsStock(), dit.dit_blocks(model), "gpu_flow_cost")
        return basic(patched), {}

    out["Joint attention driver alone (every block, attending as stock) + stock euler"] = (driver_alone, 2, 1, True,
                                                                                            b2)
    singles = bool(host.pack.hostkit.dit_attention.dit_blocks(model, ("single_block",)))
    for (cross, self_), what in (((1.0, 0.0), "replace, every step and block"),
                                 ((0.8, 0.4), "defaults: cross 0.8, self 0.4, all blocks")):
        for blend in (None,) + (("all",) + (("double",) if singles else ()) if self_ else ()):
            reads = {None: "", "all": ", local blend", "double": ", local blend on the double blocks"}[blend]
            out[f"Joint Attention Inject ({what}{reads}, the pair) + stock euler"] = (joint(cross, self_, blend), 2, 1,
                                                                                      True, b2)
    return out


def _tensor_bytes(value) -> int:
    """Bytes of every tensor reachable in ``value`` (dicts, lists, tuples, dataclasses' fields)."""
    seen: set = set()

    def walk(v) -> int:
        if isinstance(v, torch.Tensor):
            key = (v.untyped_storage().data_ptr(), v.device)
            if key in seen:
                return 0
            seen.add(key)
            return v.untyped_storage().nbytes()
        if isinstance(v, dict):
            return sum(walk(x) for x in v.values())
        if isinstance(v, (list, tuple)):
            return sum(walk(x) for x in v)
        if hasattr(v, "__dict__"):
            return walk(vars(v))
        return 0
    return walk(value)


def beside(case, baseline, device: torch.device, repeats: int) -> tuple[dict, dict]:
    """``median_runs`` of ``case`` and the (already warm) ``baseline``: the case warmed up once, then
    ``repeats`` rounds of the two in turn."""
    case()
    got: dict = {"case": [], "base": []}
    peak, out = 0, None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds, out = timed(case, device)
        got["case"].append(seconds)
        if device.type == "cuda":
            peak = max(peak, torch.cuda.max_memory_allocated(device))
        got["base"].append(timed(baseline, device)[0])
    return ({"seconds": statistics.median(got["case"]), "all": got["case"], "out": out,
             "peak_mib": peak / 2 ** 20 if device.type == "cuda" else None},
            {"seconds": statistics.median(got["base"]), "all": got["base"]})


def measure(host, family: str, side: int, steps: int, repeats: int, model, clip, runs: list, save,
            only: str = "") -> dict:
    """Every case of ``cases`` at ``side`` px; the run's dict is appended to ``runs`` first and filled
    row by row (``save()`` after each)."""
    import comfy.model_management as mm
    from workshop.headless.calls import call

    device = mm.get_torch_device()
    latent = torch.randn(2, 16, side // 8, side // 8, generator=torch.Generator().manual_seed(0))
    built = cases(host, family, model, clip, latent, steps)
    if only:   # the baselines and the cases whose label holds ``only``
        built = {label: case for label, case in built.items() if not case[3] or only in label}
    result = {"side": side, "steps": steps, "repeats": repeats, "rows": []}
    runs.append(result)

    def runner(make):
        def run():
            guider, sampler, lat = make()
            sigmas = call(host, "BasicScheduler", model=guider.model_patcher, scheduler="simple", steps=steps,
                          denoise=1.0)[0]
            return call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=0)[0], guider=guider,
                        sampler=sampler, sigmas=sigmas, latent_image={"samples": lat})[0]["samples"]
        return run

    # the baselines, then each case beside its baseline (one case's inversion held at a time)
    base = {label: runner(v[0]()[0]) for label, v in built.items() if not v[3]}
    times = median_runs(base, device, repeats)
    for label, (prepare, rows, nfe, goal, baseline) in built.items():
        started = time.perf_counter()
        if goal:
            try:
                make, extra = prepare()
                t, b = beside(runner(make), base[baseline], device, repeats)
            except Exception as e:   # one case's failure (say, out of memory) is a finding: report it, go on
                result["rows"].append({"label": label, "goal": goal, "error": f"{type(e).__name__}: {e}"[:500]})
                print(f"  {family} {side} px: {label}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
                save()
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            del make
        else:
            t, extra = times[label], {}
        out = t.pop("out")
        row = {"label": label, "rows": rows, "evaluations_per_step": nfe, "goal": goal, "baseline": baseline,
               "seconds_per_eval": t["seconds"] / (steps * nfe), "seconds_all": t["all"], "peak_mib": t["peak_mib"],
               "finite": bool(torch.isfinite(out).all())} | extra
        if goal:
            row["baseline_seconds_per_eval"] = b["seconds"] / steps
            row["vs_baseline"] = row["seconds_per_eval"] / row["baseline_seconds_per_eval"]
        result["rows"].append(row)
        print(f"  {family} {side} px: {label}: {row['seconds_per_eval'] * 1000:.1f} ms/eval"
              + (f", {row['vs_baseline']:.2f}x {baseline}" if goal else "") + ("" if row["finite"] else " (NOT finite)")
              + f" [{time.perf_counter() - started:.0f} s]", flush=True)
        save()
        del out
        gc.collect()
    del built
    synchronize(device)
    return result


# ----------------------------------------------------------------------------- report

def table(result: dict) -> str:
    head = (f"Device: {result['device']}; torch {result['torch']}; the host's defaults there: "
            f"{result.get('host_defaults', 'not recorded')}"
            + ("; TINY models (a code-path check, not a cost figure)" if result["tiny"] else ""))
    lines = [head, "", "| model | picture | run | rows | ms / evaluation | vs stock, same rows, side by side | peak GPU memory |",
             "|---|---|---|---|---|---|---|"]
    for family, r in result["families"].items():
        name = f"{NAMES[family]} ({r['model']['parameters'] / 1e9:.2f} G, {r['model']['dtype']})"
        for run in r["runs"]:
            for row in run["rows"]:
                if "error" in row:
                    lines.append(f"| {name} | {run['side']} px | {row['label']} | - | failed: {row['error'][:120]} | - | - |")
                    continue
                ratio = f"{row['vs_baseline']:.2f}x" if row["goal"] else "(baseline)"
                peak = "-" if row["peak_mib"] is None else f"{row['peak_mib'] / 1024:.1f} GiB"
                flag = "" if row["finite"] else " (not finite)"
                lines.append(f"| {name} | {run['side']} px | {row['label']}{flag} | {row['rows']} | "
                             f"{row['seconds_per_eval'] * 1000:.1f} | {ratio} | {peak} |")
    for family, r in result["families"].items():
        for run in r["runs"]:
            for row in run["rows"]:
                if "kv_cache_bytes" in row:
                    mp = run["side"] ** 2 / 1e6
                    per = row["kv_cache_bytes"] / row["kv_cache_rows"] / run["steps"] / mp / 2 ** 30
                    lines.append(f"\nKV-Edit's cache (on {row['kv_cache_on']}), {NAMES[family]} at {run['side']} px: "
                                 f"{row['kv_cache_bytes'] / 2 ** 30:.2f} GiB for {row['kv_cache_rows']} rows and "
                                 f"{run['steps']} steps: {per:.2f} GiB per row, step and megapixel")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="the tiny flow models at 64 px: a code-path check")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sides", default="", help="picture sides, comma-separated (default 1024,512; --tiny: 64)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 2; --tiny: 1)")
    ap.add_argument("--only", default="", help="time only the cases whose label holds this text (and the baselines)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--table", nargs="+", type=Path, default=None)
    args = ap.parse_args(argv)
    families = tables_or_families(ap, args, table, FAMILIES)
    if isinstance(families, int):
        return families
    sides = [int(s) for s in args.sides.split(",")] if args.sides else [64] if args.tiny else [1024, 512]
    repeats = args.repeats or (1 if args.tiny else 2)
    if args.device == "cpu":
        torch.set_flush_denormal(True)
        torch.set_num_threads(1)

    from workshop.headless.boot import boot

    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-gpu-flow-cost-"), cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result = {"device": name, "torch": torch.__version__, "tiny": args.tiny, "goal": GOAL,
              "host_defaults": host_defaults(device), "families": {}}

    def save():
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))

    print(f"device: {name}", flush=True)
    with torch.inference_mode():
        for family in families:
            model, info = random_flow_model(host, family, args.tiny)
            clip = text_encoder(family, args.tiny)
            print(f"{family}: {info['parameters'] / 1e9:.2f} G parameters, {info['dtype']} (manual cast "
                  f"{info['manual_cast']}), built in {info['build_seconds']:.0f} s", flush=True)
            r = result["families"][family] = {"model": info, "runs": []}
            for side in sides:
                measure(host, family, side, args.steps, repeats, model, clip, r["runs"], save, args.only)
                save()
            del model, clip
            free_memory()
    save()
    print()
    print(table(result))
    over = [f"{f} {run['side']} px: {row['label']}: {row['vs_baseline']:.2f}x" for f, r in result["families"].items()
            for run in r["runs"] for row in run["rows"] if row["goal"] and row.get("vs_baseline", 0) > GOAL]
    print("\n" + ("every editor within 1.1x" if not over else "over 1.1x:\n  " + "\n  ".join(over)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
