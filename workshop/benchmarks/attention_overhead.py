"""What the attention editors add to a step on the CPU side: the first GPU run (H200, SD1.5, docs/
measurements.md "On a GPU") found a stock step bound by the CPU issuing kernels (about 22 µs a
kernel) and Prompt-to-Prompt's replace at 1.12x a stock step with 1.05x its kernels: part of the
cost is the Python around the patched attention calls. This measures that part without a GPU.

One sampling step of each editor of ``gpu_cost.EDITORS`` on the tiny SD1 demo model records every
attention call the driver (``hostkit/attention_driver.py``) receives at its second step (every
injection active); the recorded calls are then replayed, each through the editor's driver and
through the host's own attention (what the stock step runs in that place), on tensors so small that
the arithmetic is negligible. Reported: microseconds per step added by the editor (the replay's
difference, median of interleaved repeats), the aten operations it adds, and the driver's and
policy's own Python per call (the same replay with the host's attention replaced by a no-op).

    python -m workshop.benchmarks.attention_overhead [--repeats 7] [--loops 20]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from workshop.benchmarks.dispatch_count import OpCounter
from workshop.benchmarks.gpu_cost import EDITORS, SOURCE, TARGET
from workshop.headless.boot import boot
from workshop.headless.calls import builtin_model, call, encode


def record_calls(host, model_with_editor, cond, latent, negative) -> list:
    """Every (driver, q, k, v, extra_options) the attention driver received in the second UNet
    evaluation of a two-step run."""
    driver_class = host.pack.hostkit.attention_driver.AttentionDriver
    original = driver_class.__call__
    seen: list = []
    sigmas: list = []

    def recording(self, q, k, v, extra_options):
        sigma = extra_options.get("sigmas")
        if not sigmas or sigmas[-1] is not sigma:
            sigmas.append(sigma)
        if len(sigmas) == 2:
            seen.append((self, q.detach().clone(), k.detach().clone(), v.detach().clone(), extra_options))
        return original(self, q, k, v, extra_options)

    driver_class.__call__ = recording
    try:
        call(host, "KSamplerAdvanced", model=model_with_editor, add_noise="enable", noise_seed=0, steps=2, cfg=5.0,
             sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=negative, latent_image=latent,
             start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
    finally:
        driver_class.__call__ = original
    return seen


def replay(calls: list, through_driver: bool, host_attention) -> None:
    with torch.inference_mode():   # as the host samples
        for driver, q, k, v, options in calls:
            if through_driver:
                driver(q, k, v, options)
            else:
                host_attention(q, k, v, options)


def median_seconds(fn, repeats: int, loops: int) -> float:
    """The median over ``repeats`` of the mean seconds of ``loops`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - start) / loops)
    return statistics.median(times)


def measure(calls: list, host_attention, repeats: int, loops: int) -> dict:
    runs = {through: (lambda through=through: replay(calls, through, host_attention)) for through in (False, True)}
    for run in runs.values():   # warm-up: plans and memos made once, as in a run
        run()
    seconds = {through: [] for through in runs}
    for _ in range(repeats):    # interleaved: each repeat times both
        for through, run in runs.items():
            seconds[through].append(median_seconds(run, 1, loops))
    ops = {}
    for through, run in runs.items():
        with OpCounter() as counter:
            run()
        ops[through] = counter.total
    stock, editor = statistics.median(seconds[False]), statistics.median(seconds[True])
    return {"calls": len(calls), "stock_us": 1e6 * stock, "editor_us": 1e6 * editor,
            "added_us": 1e6 * (editor - stock), "added_ops": ops[True] - ops[False], "stock_ops": ops[False]}


def python_per_call(host, calls: list, repeats: int, loops: int) -> float:
    """Microseconds per call of the driver and policy with the host's attention replaced by a no-op
    (the query returned, the output's shape): the Python around the operations and their dispatch."""
    driver_module = host.pack.hostkit.attention_driver
    real = driver_module.host_attention
    driver_module.host_attention = lambda q, k, v, extra_options: q
    try:
        replay(calls, True, real)
        seconds = median_seconds(lambda: replay(calls, True, real), repeats, loops)
    finally:
        driver_module.host_attention = real
    return 1e6 * seconds / len(calls)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--loops", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot()
    model, clip, _ = builtin_model(host, "demo-sd1")
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    negative = encode(host, clip, "")
    host_attention = host.pack.hostkit.attention_maps.host_attention
    layers = len(host.pack.hostkit.layout.self_attention_layers(model))
    rows = []
    for label, (node, inputs, _) in EDITORS.items():
        inputs = dict(inputs)
        if node == "InvertEditMasaCtrl":
            inputs["start_layer"] = min(inputs["start_layer"], layers - 1)
        target = inputs.pop("target_prompt", TARGET)
        edited, cond, pair = call(host, node, model=model, clip=clip, latent=latent, source_prompt=SOURCE,
                                  target_prompt=target, **inputs)
        calls = record_calls(host, edited, cond, pair, negative)
        got = measure(calls, host_attention, args.repeats, args.loops)
        got["python_us_per_call"] = python_per_call(host, calls, args.repeats, args.loops)
        rows.append((label, got))
        print(f"{label}: {got}", flush=True)
    print("\nThe tiny SD1 demo model, batch 4 (the pair, cond and uncond), one CPU thread; "
          "the recorded calls of step 2 replayed through the editor's driver and through the host's attention:\n")
    print("| editor | attention calls / step | added µs / step | added aten ops / step "
          "| editor's own µs / call (host attention a no-op) |")
    print("|---|---|---|---|---|")
    for label, got in rows:
        print(f"| {label} | {got['calls']} | {got['added_us']:.0f} | {got['added_ops']} | "
              f"{got['python_us_per_call']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
