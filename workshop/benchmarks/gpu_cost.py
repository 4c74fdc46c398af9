"""The attention editors' cost at real size on a GPU, with the host's default GPU settings: seconds
per sampling step against stock, and the whole SD1.5 Prompt-to-Prompt workflow against stock
text-to-image (issue 23's goals: edit sampling <= 1.1x stock batch 2; the whole SD1.5
Prompt-to-Prompt workflow <= 2.0x stock text-to-image at batch 1).

    python -m workshop.benchmarks.gpu_cost [--device cuda] [--families sd15,sdxl] [--steps 20] [--repeats 5] [--json F]
    python -m workshop.benchmarks.gpu_cost --device cpu --tiny --steps 2     # the code path, on a CPU, in minutes
    python -m workshop.benchmarks.gpu_cost --table a.json [b.json ...]        # the markdown table of saved runs

Checkpoints: random-weight SD1.5 (860 M UNet parameters, 512 px) and SDXL (2.6 G, 1024 px), built on
the machine with the host's own model classes (``invertedit.demo.tiny_models``' builders on
the real configs, with real-sized CLIP text encoders and the SD VAE), initialised so activations
stay finite in fp16 (linear and conv weights ~ N(0, 1/fan_in), the UNet's output layer x 0.1),
written in fp16 with ``comfy.sd.save_checkpoint`` into a temporary folder outside the repository
(deleted at the end; 2 GB and 6.5 GB: they cannot be downloaded and must never be committed), and
loaded with the stock Load Checkpoint (``CheckpointLoaderSimple``), so the host picks its own
precisions (on an NVIDIA GPU: UNet fp16, VAE bf16, text encoders fp16, PyTorch SDPA, TF32).
``--tiny`` shrinks the UNets as far as the host's checkpoint detection allows (320 base channels,
context 768 / 2048 and SDXL's transformer depths kept, fewer levels and blocks) and runs at 64 px:
the text encoders and VAE stay real-sized, because the loader builds them from the family's own
configs.

Sampling (per family): stock KSampler (Advanced) at cfg 7.5 (empty negative, ddim, ddim_uniform)
on a batch of 1 and on the editor's pair (a batch of 2), against each attention editor on the
pair, every editor active at every step (its most expensive step): Attention Inject replace and
refine + reweight (cross and self replace 1.0), the same with local blend, MasaCtrl (from step 0,
layer 10), Plug-and-Play (1.0 / 1.0). Seconds per step = one sampling run of ``--steps`` steps
(set-up included) / steps, ``torch.cuda.synchronize()`` around it; every run is warmed up once,
then the median of ``--repeats`` interleaved runs. Counted once per run (not timed): aten
operations dispatched per step (a ``TorchDispatchMode``; a GPU run of ComfyUI is bound by the CPU
issuing work, HOST-NOTES), CUDA kernels per step (``torch.profiler``, on CUDA only), peak GPU
memory (``max_memory_allocated``). Whole workflow: the shipped "<family> - Prompt-to-Prompt edit"
workflow (Load Image of the bundled sample, Upscale Image to the family's size, VAE Encode, DDIM
Invert, Direct Inversion, Attention Inject with local blend, a 50-step pair run, VAE Decode, Save
Image) and a stock text-to-image graph (Empty Latent Image, KSampler with the same steps, cfg,
sampler and scheduler, VAE Decode, Save Image), each executed by the host's executor with the
checkpoint already loaded (as a server's cache holds it between prompts).
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
SOURCE, TARGET = "a photo of a cat sitting on a bench", "a photo of a dog sitting on a bench"
REFINED = "a photo of a fluffy cat sitting on a wooden bench"   # refine: words added
BLEND_SOURCE, BLEND_TARGET = "cat", "dog"
CFG = 7.5
FAMILIES = ("sd15", "sdxl")
NAMES = {"sd15": "SD1.5", "sdxl": "SDXL"}
SIZE = {"sd15": 512, "sdxl": 1024}   # the family's image side; --tiny: 64
WORKFLOW = "{} - Prompt-to-Prompt edit.json"   # in example_workflows/, with NAMES
GOALS = {"editor_vs_stock_batch2": 1.1, "sd15_p2p_workflow_vs_t2i_batch1": 2.0}
PRELOADED = "InvertEditBenchPreloadedCheckpoint"   # a stand-in for Load Checkpoint in the timed graphs

# label: (node, inputs, counted against the goal); every editor active at every step
EDITORS = {
    "Attention Inject: replace (cross 1.0, self 1.0)": ("InvertEditAttentionInject", dict(
        mode="replace", reweight="", cross_replace=1.0, self_replace=1.0, local_blend=False), True),
    "Attention Inject: refine + reweight (cross 1.0, self 1.0)": ("InvertEditAttentionInject", dict(
        mode="refine", reweight="fluffy:2", cross_replace=1.0, self_replace=1.0, target_prompt=REFINED,
        local_blend=False), True),
    "Attention Inject: replace + local blend (the workflows' editor)": ("InvertEditAttentionInject", dict(
        mode="replace", reweight="", cross_replace=1.0, self_replace=1.0, blend_source_words=BLEND_SOURCE,
        blend_target_words=BLEND_TARGET, blend_threshold=0.3, blend_start=0.0), False),
    "MasaCtrl (from step 0, layer 10)": ("InvertEditMasaCtrl", dict(start_step=0, start_layer=10), True),
    "Plug-and-Play (1.0 / 1.0)": ("InvertEditPlugAndPlay", dict(feature_injection=1.0, self_attention_injection=1.0),
                                  True),
}


# ----------------------------------------------------------------------------- the models

def family_specs(tiny_models, tiny: bool) -> dict:
    """{family: FamilySpec} with real-sized text encoders (the loader builds the family's own), the
    host's real UNet configs, or with ``tiny`` the smallest UNets the host's detection still reads
    as SD1.5 / SDXL (it matches 320 base channels, the context width, SDXL's transformer depths)."""
    from workshop.benchmarks.real_size_cost import real_specs

    specs = real_specs(tiny_models)
    out = {}
    for family in FAMILIES:
        spec = replace(specs[family][0], name=f"{family}-gpu-cost", text_configs={})
        if tiny:
            unet = dict(spec.unet_config)
            if family == "sd15":   # two levels, two blocks each (Plug-and-Play needs six decoder blocks)
                unet.update(channel_mult=[1, 2], num_res_blocks=[2, 2], transformer_depth=[1, 1, 1, 1],
                            transformer_depth_middle=1, transformer_depth_output=[1] * 6)
            else:                  # SDXL's depths are what detection matches; the widths are not
                unet.update(channel_mult=[1, 1, 1], transformer_depth_middle=1,
                            transformer_depth_output=[0, 0, 0, 1, 1, 1, 1, 1, 1])
            spec = replace(spec, unet_config=unet)
        out[family] = spec
    return out


SD_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
          "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}   # SD1.x/SDXL's


def build_vae(tiny_models, seed: int = 0):
    """The SD VAE's architecture (84 M parameters) with seeded random weights, as the host's
    ``comfy.sd.VAE`` reads it from a checkpoint (config inferred from the keys)."""
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ae = AutoencoderKL(ddconfig=dict(SD_VAE), embed_dim=4)
    tiny_models.init_weights(ae, tiny_models._generator("gpu-cost", "vae", seed))
    with torch.no_grad():   # latents of about real SD spread (std ~ 1 / 0.18215), as the tiny VAE does
        ae.quant_conv.weight.mul_(tiny_models._LATENT_STD)
        ae.post_quant_conv.weight.div_(tiny_models._LATENT_STD)
    return comfy.sd.VAE(sd={k: v.detach().clone() for k, v in ae.state_dict().items()})


def write_checkpoint(host, family: str, spec, folder: Path, seed: int = 0) -> tuple[Path, float]:
    """Build the family's random-weight checkpoint and write it (fp16) with ``comfy.sd.save_checkpoint``
    into ``folder``; returns its path and the seconds it took."""
    import comfy.sd

    tiny = host.pack.demo.tiny_models
    started = time.perf_counter()
    model, clip, vae = tiny.build_unet(spec, seed=seed), tiny.build_clip(spec, seed=seed), build_vae(tiny, seed)
    model.model.diffusion_model.half()
    clip.cond_stage_model.half()
    vae.first_stage_model.half()
    path = folder / f"random-{family}.safetensors"
    comfy.sd.save_checkpoint(str(path), model, clip=clip, vae=vae)
    del model, clip, vae
    free_memory()
    return path, time.perf_counter() - started


def free_memory() -> None:
    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()
    comfy.model_management.soft_empty_cache()


# ----------------------------------------------------------------------------- measuring

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_kernels(fn, device: torch.device) -> int | None:
    """CUDA kernels launched by ``fn()`` (torch.profiler: kernels seen on the device, or the
    runtime's launch calls where the device trace is missing); None off CUDA or if the profiler fails."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            synchronize(device)
        return kernel_count(prof.key_averages())
    except Exception as e:   # a count is a figure, not a goal: report and go on
        print(f"  (kernel count failed: {type(e).__name__}: {e})", flush=True)
        return None


def kernel_count(averages) -> int:
    """Kernels in a profiler's ``key_averages()``: device events other than copies and sets, or the
    CPU-side launch calls (cudaLaunchKernel, cudaLaunchKernelExC, cuLaunchKernel), whichever is more."""
    on_device = sum(e.count for e in averages if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA
                    and not e.key.startswith(("Memcpy", "Memset")))
    launches = sum(e.count for e in averages if "LaunchKernel" in e.key)
    return max(on_device, launches)


def timed(fn, device: torch.device) -> tuple[float, object]:
    synchronize(device)
    started = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - started, out


def median_runs(cases: dict, device: torch.device, repeats: int) -> dict:
    """{label: fn} -> {label: {"seconds": median, "all": [...], "peak_mib": ..., "out": the last run's
    result}}: every case warmed up once, then ``repeats`` interleaved rounds."""
    for fn in cases.values():
        fn()
    got: dict = {label: [] for label in cases}
    peaks: dict = {label: 0 for label in cases}
    last: dict = {}
    for _ in range(repeats):
        for label, fn in cases.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds, last[label] = timed(fn, device)
            got[label].append(seconds)
            if device.type == "cuda":
                peaks[label] = max(peaks[label], torch.cuda.max_memory_allocated(device))
    return {label: {"seconds": statistics.median(v), "all": v, "out": last[label],
                    "peak_mib": peaks[label] / 2 ** 20 if device.type == "cuda" else None} for label, v in got.items()}


# ----------------------------------------------------------------------------- one family

def _preloaded_node(host):
    """Register (once) a node that returns the checkpoint loaded beforehand, in Load Checkpoint's
    slots: the timed graphs then pay what a server pays once the loader's output is cached."""
    class PreloadedCheckpoint:
        RETURN_TYPES = ("MODEL", "CLIP", "VAE")
        FUNCTION = "load"
        CATEGORY = "InvertEdit/benchmarks"
        loaded: dict = {}

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"ckpt_name": ("STRING", {"default": ""})}}

        def load(self, ckpt_name):
            return self.loaded[ckpt_name]

    host.nodes.NODE_CLASS_MAPPINGS.setdefault(PRELOADED, PreloadedCheckpoint)
    return host.nodes.NODE_CLASS_MAPPINGS[PRELOADED]


def _t2i_prompt(ckpt_name: str, side: int, steps: int, cfg: float, sampler: str, scheduler: str) -> dict:
    return {
        "1": {"class_type": PRELOADED, "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": SOURCE, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": side, "height": side, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": steps, "cfg": cfg,
                                                   "sampler_name": sampler, "scheduler": scheduler,
                                                   "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "gpu_cost/t2i"}},
    }


def _image_spread(runner, outputs) -> float:
    """Standard deviation of the saved pictures' pixels (0 for a black or NaN-filled picture)."""
    import numpy as np
    from PIL import Image

    values = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255 for f in runner.saved_images(outputs)]
    return float(np.std(np.stack(values))) if values else 0.0


def measure_family(host, family: str, ckpt: Path, *, side: int, steps: int, repeats: int, workflow_steps: int | None,
                   count: bool, tiny: bool) -> dict:
    import comfy.model_management as mm
    import folder_paths
    from workshop.headless import runner
    from workshop.headless.calls import call, encode

    device = mm.get_torch_device()
    folder_paths.add_model_folder_path("checkpoints", str(ckpt.parent), is_default=True)
    started = time.perf_counter()
    model, clip, vae = call(host, "CheckpointLoaderSimple", ckpt_name=ckpt.name)
    load_seconds = time.perf_counter() - started
    unet = model.model.diffusion_model
    result: dict = {
        "family": family, "image_side": side * 8, "latent_side": side, "steps": steps, "repeats": repeats,
        "unet_parameters": sum(p.numel() for p in unet.parameters()), "checkpoint_bytes": ckpt.stat().st_size,
        "load_seconds": load_seconds,
        "dtypes": {"unet": str(model.model.get_dtype()), "unet_manual_cast": str(model.model.manual_cast_dtype),
                   "vae": str(vae.vae_dtype), "text_encoder": str(next(clip.cond_stage_model.parameters()).dtype)},
    }
    print(f"{family}: loaded {ckpt.name} ({ckpt.stat().st_size / 2 ** 30:.2f} GiB, "
          f"{result['unet_parameters'] / 1e6:.0f} M UNet parameters) in {load_seconds:.1f} s; {result['dtypes']}",
          flush=True)

    latent = {"samples": torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0))}
    positive, negative = encode(host, clip, SOURCE), encode(host, clip, "")
    layers = len(host.pack.hostkit.layout.self_attention_layers(model))

    def sample(m, cond, lat):
        return call(host, "KSamplerAdvanced", model=m, add_noise="enable", noise_seed=0, steps=steps, cfg=CFG,
                    sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=negative, latent_image=lat,
                    start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]

    runs: dict = {}   # label: (fn, kind, goal)
    editors = {}
    for label, (node, inputs, goal) in EDITORS.items():
        inputs = dict(inputs)
        if node == "InvertEditMasaCtrl" and inputs["start_layer"] >= layers:   # the tiny UNet has fewer layers
            inputs["start_layer"] = layers - 1
            label = label.replace("layer 10", f"layer {layers - 1}")
        target = inputs.pop("target_prompt", TARGET)
        editors[label] = (call(host, node, model=model, clip=clip, latent=latent, source_prompt=SOURCE,
                               target_prompt=target, **inputs), goal)
    (_, pair_cond, pair), _ = next(iter(editors.values()))
    runs["stock KSampler, batch 1"] = (lambda m=model: sample(m, positive, latent), "stock", False)
    runs["stock KSampler, batch 2 (the pair)"] = (lambda m=model: sample(m, pair_cond, pair), "stock", False)
    for label, ((m, cond, lat), goal) in editors.items():
        runs[label] = (lambda m=m, c=cond, p=lat: sample(m, c, p), "editor", goal)

    print(f"{family}: sampling, {steps} steps at {side * 8} px, warm-up + median of {repeats}", flush=True)
    times = median_runs({label: fn for label, (fn, _, _) in runs.items()}, device, repeats)
    stock2 = times["stock KSampler, batch 2 (the pair)"]["seconds"]
    rows = []
    for label, (fn, kind, goal) in runs.items():
        out = times[label].pop("out")
        row = {"label": label, "kind": kind, "goal": goal, "seconds_per_step": times[label]["seconds"] / steps,
               "seconds_all": times[label]["all"], "vs_stock_batch2": times[label]["seconds"] / stock2,
               "peak_mib": times[label]["peak_mib"], "finite": bool(torch.isfinite(out).all())}
        if count:
            from workshop.benchmarks.dispatch_count import OpCounter

            with OpCounter() as counter:
                fn()
            row["ops_per_step"] = counter.total / steps
            row["syncs_per_step"] = counter.syncs / steps   # reads of a device value on the CPU: each a wait
            kernels = count_kernels(fn, device)
            row["kernels_per_step"] = None if kernels is None else kernels / steps
        rows.append(row)
        print(f"  {label}: {row['seconds_per_step'] * 1000:.1f} ms/step, {row['vs_stock_batch2']:.2f}x stock batch 2"
              + (f", {row['ops_per_step']:,.0f} ops/step" if count else ""), flush=True)
    result["sampling"] = rows
    del editors, runs

    path = REPO / "example_workflows" / WORKFLOW.format(NAMES[family])
    workflow = runner.load_workflow(path)
    overrides = {}
    if tiny or workflow_steps is not None:
        overrides = {"ImageScale": {"width": side * 8, "height": side * 8}}
        if workflow_steps is not None:
            overrides |= {"InvertEditDDIMInvert": {"steps": workflow_steps}, "KSamplerAdvanced": {"steps": workflow_steps}}
    prompt = runner.prepare_prompt(workflow, ckpt=ckpt, image=runner.SAMPLE_IMAGE, overrides=overrides, host=host)
    node = _preloaded_node(host)
    node.loaded[ckpt.name] = (model, clip, vae)
    for entry in prompt.values():
        if entry["class_type"] == "CheckpointLoaderSimple":
            entry["class_type"] = PRELOADED
    (sampler,) = [v["inputs"] for v in prompt.values() if v["class_type"] == "KSamplerAdvanced"]
    (scale,) = [v["inputs"] for v in prompt.values() if v["class_type"] == "ImageScale"]
    t2i = _t2i_prompt(ckpt.name, scale["width"], sampler["steps"], sampler["cfg"], sampler["sampler_name"],
                      sampler["scheduler"])
    spreads = {}

    def execute(label, graph):
        def run():
            outputs = runner.execute(graph, host=host)
            spreads[label] = _image_spread(runner, outputs)
        return run

    label_p2p = f"{path.stem} (the shipped workflow, {sampler['steps']} steps)"
    label_t2i = f"stock text-to-image, batch 1 ({sampler['steps']} steps)"
    print(f"{family}: whole workflow vs stock text-to-image at {scale['width']} px, warm-up + median of {repeats}",
          flush=True)
    whole = median_runs({label_p2p: execute(label_p2p, prompt), label_t2i: execute(label_t2i, t2i)}, device, repeats)
    for entry in whole.values():
        entry.pop("out")
    result["workflow"] = {"label": label_p2p, "baseline": label_t2i, "steps": sampler["steps"], "image_side": scale["width"],
                          "seconds": whole[label_p2p]["seconds"], "baseline_seconds": whole[label_t2i]["seconds"],
                          "vs_t2i_batch1": whole[label_p2p]["seconds"] / whole[label_t2i]["seconds"],
                          "peak_mib": whole[label_p2p]["peak_mib"], "baseline_peak_mib": whole[label_t2i]["peak_mib"],
                          "image_spread": spreads[label_p2p], "baseline_image_spread": spreads[label_t2i]}
    print(f"  {label_p2p}: {result['workflow']['seconds']:.2f} s, {result['workflow']['vs_t2i_batch1']:.2f}x "
          f"{label_t2i} ({result['workflow']['baseline_seconds']:.2f} s)", flush=True)
    node.loaded.clear()
    del model, clip, vae, unet
    free_memory()
    return result


# ----------------------------------------------------------------------------- report

def goal_failures(result: dict) -> list[str]:
    """What a run (the --json) says against the issue's goals: every goal editor within 1.1x stock
    batch 2, the whole SD1.5 Prompt-to-Prompt workflow within 2.0x stock t2i batch 1, every
    output finite and every saved picture not blank."""
    failures = []
    for family, r in result["families"].items():
        for row in r["sampling"]:
            if not row["finite"]:
                failures.append(f"{family}: {row['label']}: the sampled latent is not finite")
            if row["goal"] and row["vs_stock_batch2"] > GOALS["editor_vs_stock_batch2"]:
                failures.append(f"{family}: {row['label']}: {row['vs_stock_batch2']:.2f}x stock batch 2 "
                                f"(goal <= {GOALS['editor_vs_stock_batch2']})")
        w = r["workflow"]
        for key, label in (("image_spread", w["label"]), ("baseline_image_spread", w["baseline"])):
            if not w[key] > 0.0:
                failures.append(f"{family}: {label}: the saved picture is blank (black or not finite)")
        if family == "sd15" and w["vs_t2i_batch1"] > GOALS["sd15_p2p_workflow_vs_t2i_batch1"]:
            failures.append(f"sd15: {w['label']}: {w['vs_t2i_batch1']:.2f}x {w['baseline']} "
                            f"(goal <= {GOALS['sd15_p2p_workflow_vs_t2i_batch1']})")
    return failures


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(result: dict) -> str:
    """A run (the --json) as markdown: the machine, then one row per sampling run and workflow."""
    head = (f"Device: {result['device']}; torch {result['torch']}; ComfyUI's defaults there: "
            f"{result['host_defaults']}" + ("; TINY UNets at 64 px (a code-path check, not a cost figure)"
                                            if result["tiny"] else ""))
    lines = [head, "", "| model | run | ms / step | vs stock batch 2 | aten ops / step | device reads / step "
             "| CUDA kernels / step | peak GPU memory |", "|---|---|---|---|---|---|---|---|"]
    for family, r in result["families"].items():
        name = f"{NAMES[family]}, {r['image_side']} px"
        for row in r["sampling"]:
            mark = " (goal <= 1.1x)" if row["goal"] else ""
            lines.append(f"| {name} | {row['label']}{mark} | {row['seconds_per_step'] * 1000:.1f} | "
                         f"{row['vs_stock_batch2']:.2f}x | {_num(row.get('ops_per_step'), ',.0f')} | "
                         f"{_num(row.get('syncs_per_step'), '.1f')} | {_num(row.get('kernels_per_step'), ',.0f')} | "
                         f"{_num(None if row['peak_mib'] is None else row['peak_mib'] / 1024, '.2f')} GiB |")
    lines += ["", "| model | whole workflow | seconds | stock text-to-image batch 1 | ratio |", "|---|---|---|---|---|"]
    for family, r in result["families"].items():
        w = r["workflow"]
        goal = " (goal <= 2.0x)" if family == "sd15" else ""
        lines.append(f"| {NAMES[family]}, {w['image_side']} px | {w['label']} | {w['seconds']:.2f} | "
                     f"{w['baseline_seconds']:.2f} | {w['vs_t2i_batch1']:.2f}x{goal} |")
    return "\n".join(lines)


def tables_or_families(ap: argparse.ArgumentParser, args: argparse.Namespace, table, known) -> list[str] | int:
    """The start both GPU cost benchmarks share: with ``--table``, print each JSON file's ``table``
    and give 0 (the exit status); otherwise ``--families`` checked against ``known`` and returned, or
    2 where ``--device cuda`` has no CUDA."""
    if args.table:
        print("\n\n".join(table(json.loads(p.read_text())) for p in args.table))
        return 0
    families = [f for f in args.families.split(",") if f]
    if not families or set(families) - set(known):
        ap.error(f"--families: use some of {', '.join(known)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False (use --device cpu --tiny for a code-path "
              "check on a CPU)", file=sys.stderr)
        return 2
    return families


def report(result: dict, path: Path | None, text: str, failures: list[str] | None) -> None:
    """Write ``result`` as JSON to ``path`` (where given), print its ``text`` table and whether the goals were
    met (``failures``; None: the goals were not checked)."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
    print()
    print(text)
    if failures is not None:
        print("\n" + ("goals met" if not failures else "goals NOT met:\n  " + "\n  ".join(failures)))


def host_defaults(device: torch.device) -> dict:
    """The precisions and attention the host chose on this device (nothing forced)."""
    import comfy.ldm.modules.attention as attention
    import comfy.model_management as mm

    out = {"device": str(device), "unet (SD1.5-sized)": str(mm.unet_dtype(model_params=860_000_000,
                                                                           supported_dtypes=[torch.float16,
                                                                                             torch.bfloat16,
                                                                                             torch.float32])),
           "vae": str(mm.vae_dtype(device)), "text_encoder": str(mm.text_encoder_dtype(device)),
           "attention": getattr(attention.optimized_attention, "__name__", str(attention.optimized_attention))}
    if device.type == "cuda":
        out["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        out["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cuda: the host's default device and settings (no --cpu); cpu: the host's --cpu")
    ap.add_argument("--tiny", action="store_true", help="the smallest UNets the loader detects, at 64 px: a code-path check")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated: sd15, sdxl")
    ap.add_argument("--steps", type=int, default=20, help="sampling steps per timed run (default 20)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 5; --tiny: 1)")
    ap.add_argument("--workflow-steps", type=int, default=None,
                    help="steps of the whole-workflow comparison (default: the workflow's 50; --tiny: --steps)")
    ap.add_argument("--no-count", action="store_true", help="skip the op and kernel counts")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; --device cpu: 1)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="where the checkpoints are written (default: a new temporary folder, deleted at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints (in --work-dir)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--table", nargs="+", type=Path, default=None, help="print the tables of these --json files and stop")
    args = ap.parse_args(argv)
    families = tables_or_families(ap, args, table, FAMILIES)
    if isinstance(families, int):
        return families
    repeats = args.repeats if args.repeats is not None else (1 if args.tiny else 5)
    workflow_steps = args.workflow_steps if args.workflow_steps is not None else (args.steps if args.tiny else None)
    if args.device == "cpu":   # random weights make denormals, slow on a CPU; flushing holds on this thread only
        torch.set_flush_denormal(True)
        torch.set_num_threads(args.threads or 1)
    elif args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="invertedit-gpu-cost-")).resolve()
    if work.is_relative_to(REPO):
        ap.error(f"--work-dir {work} is inside the repository: the checkpoints must never be committed")
    work.mkdir(parents=True, exist_ok=True)

    from workshop.headless.boot import boot

    host = boot(base_dir=work / "host", cpu=args.device == "cpu")
    import comfy.model_management as mm

    device = mm.get_torch_device()
    if device.type != args.device:
        print(f"error: the host runs on {device}, not {args.device}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result = {"device": name, "torch": torch.__version__, "tiny": args.tiny, "host_defaults": host_defaults(device),
              "goals": GOALS, "families": {}}
    print(f"device: {name}; host defaults: {result['host_defaults']}", flush=True)
    specs = family_specs(host.pack.demo.tiny_models, args.tiny)
    try:
        for family in families:
            ckpt, seconds = write_checkpoint(host, family, specs[family], work)
            print(f"{family}: built and wrote {ckpt} ({ckpt.stat().st_size / 2 ** 30:.2f} GiB) in {seconds:.0f} s",
                  flush=True)
            side = 8 if args.tiny else SIZE[family] // 8
            with torch.inference_mode():
                r = measure_family(host, family, ckpt, side=side, steps=args.steps, repeats=repeats,
                                   workflow_steps=workflow_steps, count=not args.no_count, tiny=args.tiny)
            r["build_seconds"] = seconds
            result["families"][family] = r
            if not args.keep:
                ckpt.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(result, args.json, table(result), goal_failures(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
