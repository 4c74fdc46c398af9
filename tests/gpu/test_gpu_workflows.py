"""GPU lane, part 1: every shipped workflow on the GPU with the host's default settings.

The cases are ``tests/host/test_workflows.py``'s: every ``example_workflows/*.json`` as
``test_workflow_runs_headless`` prepares it (Load Checkpoint swapped for the Toy World Model, the
toy world's prompts, the quick step counts), and the SDXL checkpoint workflows also on the Demo
Model's SDXL layout. ``gpu_lane_worker.py`` runs them in a subprocess with the host booted on its
default device (no ``--cpu``, nothing forced) and checks each with that module's own
``_run_and_check`` (pictures saved at the right size and carrying the workflow; the exact judge's
``OUTPUT_CHECKS``); a second subprocess, started at the same time, runs the same cases with the
host's ``--cpu`` (fp32): the reference.

Each case must: run without an error; pass the same checks as on the CPU; hand Save Image finite
pictures (NaN or inf before quantisation fails) that are not black; save the same pictures as the
CPU run, each within PSNR_MIN_DB of it. HOST-NOTES measured GPU against CPU pictures at 30-67 dB
(TF32 matmuls and other kernels, at edges, the toy UNet in fp32); 25 dB leaves 5 dB below the
lowest for an fp16 UNet's rounding, while a real device bug (a row mixed up, a patch dropped, an
fp16 overflow) changes an object's colour or place: the toy edits themselves differ from their
reconstructions by about 15-20 dB. A first guess until the lane's first GPU run (its PSNR table
says how close each picture came).

A third run, after the GPU's, of every case that does not train, loads the UNet with fp8 weights (``gpu_lane_worker.py --fp8``: the host's
``--fp8_e4m3fn-unet``, as ComfyUI's flux1-dev-fp8 checkpoint loads): each case must run, and hand Save
Image finite pictures that are not black (fp8 weights draw another picture of the toy world, so neither
the judge nor the CPU comparison applies; ``tests/host/test_half_precision.py`` emulates it on the CPU).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import gpu_lane_worker as worker
from workshop.gpu_lane_compare import NOT_BLACK, PSNR_MIN_DB, psnr
from workshop.gpu_lane_compare import picture as _picture

pytestmark = pytest.mark.gpu

WORKER = Path(__file__).resolve().with_name("gpu_lane_worker.py")
TIMEOUT_S = 3600
CASES = worker.cases()
# The fp8 run leaves out the workflows that train (minutes each on a GPU; with fp8 weights they learn something
# else: tests/host/test_half_precision.py's FP8_TRAINED), so that it costs a fraction of the GPU run.
FP8_CASES = [c["id"] for c in CASES if c["id"] not in worker.TRAINING_LAST]


@dataclass
class Lane:
    gpu: dict
    cpu: dict
    fp8: dict
    root: Path
    psnr: dict = field(default_factory=dict)


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else "(no log)"


@pytest.fixture(scope="session")
def lane(cuda_only, request, tmp_path_factory, lane_env, lane_out):
    """Both workers' results for the cases this session selected (``-k`` picks workflows)."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "callspec", None) is not None and "case" in item.callspec.params
                and Path(str(item.path)).resolve() == Path(__file__).resolve()]
    root = tmp_path_factory.mktemp("gpu-lane")
    device = cuda_only

    def dev_dir(dev: str, fp8: bool = False) -> str:
        return ("reference-cpu" if dev == "cpu" else "lane-cuda") + ("-fp8" if fp8 else "")

    def command(dev: str, fp8: bool = False) -> list[str]:
        only = [c for c in selected if c in FP8_CASES] if fp8 else selected
        cmd = [sys.executable, str(WORKER), "--device", dev, "--out", str(root / dev_dir(dev, fp8)), "--only",
               *only] + (["--fp8"] if fp8 else [])
        if dev == "cpu" and device == "cuda":   # beside the GPU run: leave it a core or two
            cmd += ["--threads", str(max(1, (os.cpu_count() or 2) - 2))]
        return cmd

    def run_fp8() -> None:   # after the other runs, on the lane's device
        with open(logs["fp8"], "w") as fp8_log:
            subprocess.run(command(device, fp8=True), stdout=fp8_log, stderr=subprocess.STDOUT, env=lane_env,
                           timeout=TIMEOUT_S, check=False)

    logs = {"cpu": root / "reference-cpu.log", "fp8": root / f"{dev_dir(device, True)}.log"}
    if device == "cuda":
        logs["cuda"] = root / "lane-cuda.log"
    if device == "cuda":    # the CPU reference alongside the GPU run
        with open(logs["cpu"], "w") as cpu_log, open(logs["cuda"], "w") as gpu_log:
            reference = subprocess.Popen(command("cpu"), stdout=cpu_log, stderr=subprocess.STDOUT, env=lane_env)
            try:
                subprocess.run(command("cuda"), stdout=gpu_log, stderr=subprocess.STDOUT, env=lane_env,
                               timeout=TIMEOUT_S, check=False)
                run_fp8()
                reference.wait(timeout=TIMEOUT_S)
            finally:
                if reference.poll() is None:
                    reference.kill()
        runs = {"gpu": ("cuda", root / dev_dir("cuda")), "cpu": ("cpu", root / dev_dir("cpu"))}
    else:                   # INVERTEDIT_GPU_LANE_DEVICE=cpu: the lane's code path; one CPU run serves both sides
        with open(logs["cpu"], "w") as cpu_log:
            subprocess.run(command("cpu"), stdout=cpu_log, stderr=subprocess.STDOUT, env=lane_env, timeout=TIMEOUT_S,
                           check=False)
        run_fp8()
        runs = {"gpu": ("cpu", root / dev_dir("cpu")), "cpu": ("cpu", root / dev_dir("cpu"))}
    runs["fp8"] = (device, root / dev_dir(device, True))
    results = {}
    for side, (dev, folder) in runs.items():
        file = folder / "results.json"
        log = logs["fp8" if side == "fp8" else dev]
        if not file.is_file():
            pytest.fail(f"the {dev} workflow run{' (fp8)' if side == 'fp8' else ''} wrote no results; its log "
                        f"ends:\n{_tail(log)}")
        results[side] = json.loads(file.read_text())
        results[side]["folder"] = folder
        if "error" in results[side]:
            pytest.fail(f"the {dev} workflow run: {results[side]['error']}")
    state = Lane(results["gpu"], results["cpu"], results["fp8"], root)
    yield state
    summary = root / "gpu_lane_workflows.md"
    lines = [f"Workflows on {state.gpu['device_name']} (host defaults {state.gpu['host_defaults']}; the Toy World "
             f"Model's UNet {state.gpu.get('toy_unet')}) against the CPU (fp32); PSNR threshold {PSNR_MIN_DB:g} dB", "",
             "| workflow | GPU s | CPU s | lowest PSNR vs CPU (dB) | fp8 weights: s |", "|---|---|---|---|---|"]
    for case, values in state.psnr.items():
        g, c = state.gpu["cases"].get(case, {}), state.cpu["cases"].get(case, {})
        f = state.fp8["cases"].get(case, {})
        low = min(values) if values else float("nan")
        lines.append(f"| {case} | {g.get('seconds') or float('nan'):.1f} | {c.get('seconds') or float('nan'):.1f} | "
                     f"{'identical' if math.isinf(low) else format(low, '.1f')} | "
                     f"{format(f['seconds'], '.1f') if f.get('ok') else 'failed'} |")
    summary.write_text("\n".join(lines) + "\n")
    lane_out(summary)
    for side in ("gpu", "cpu", "fp8"):
        lane_out(Path(results[side]["folder"]) / "results.json", f"gpu_lane_workflows_{side}.json")
    for log in logs.values():
        lane_out(log, "gpu_lane_" + log.name)


def test_the_lane_runs_on_the_hosts_default_device(lane, cuda_only):
    """The GPU worker booted the host without --cpu and ran on CUDA; what the host picked there."""
    print(f"{lane.gpu['device_name']}, torch {lane.gpu['torch']}: {lane.gpu['host_defaults']}; "
          f"the Toy World Model's UNet: {lane.gpu['toy_unet']}")
    assert lane.gpu["device"] == cuda_only
    if cuda_only == "cuda":
        assert not lane.gpu["host_args_cpu"] and lane.gpu["host_defaults"]["device"].startswith("cuda")


def _ran_and_saved_pictures(case: str, run: dict, how: str) -> dict:
    """The pictures a worker's ``run`` (``lane.gpu`` or ``lane.fp8``) saved for ``case``, by file name, after
    checking that the case ran and that Save Image got finite pictures, none black."""
    record = run["cases"][case]
    assert record["ok"], f"{case} failed {how} on {run['device_name']} ({record['stage']}):\n{record['error']}"
    not_finite = [s for s in record["image_stats"] if not s["finite"]]
    assert not not_finite, f"{case}: Save Image received pictures with NaN or inf {how}: {not_finite}"
    pictures = {Path(p).name: _picture(Path(run["folder"]) / p) for p in record["images"]}
    assert pictures, f"{case} saved no pictures {how}"
    black = [name for name, p in pictures.items() if p.max() < NOT_BLACK]
    assert not black, f"{case}: black pictures {how}: {black}"
    return pictures


@pytest.mark.parametrize("case", [c["id"] for c in CASES])
def test_workflow_on_the_gpu(case, lane):
    gpu, cpu = lane.gpu["cases"][case], lane.cpu["cases"].get(case)
    pictures = _ran_and_saved_pictures(case, lane.gpu, "on the GPU")
    assert cpu is not None and cpu["ok"], f"the CPU reference of {case} failed:\n{(cpu or {}).get('error')}"
    reference = {Path(p).name: _picture(Path(lane.cpu["folder"]) / p) for p in cpu["images"]}
    assert sorted(reference) == sorted(pictures), "the GPU and CPU runs saved different pictures"
    values = {name: psnr(pictures[name], reference[name]) for name in sorted(pictures)}
    lane.psnr[case] = list(values.values())
    print(f"{case}: GPU {gpu['seconds']:.1f} s, CPU {cpu['seconds']:.1f} s; PSNR vs CPU (dB): "
          + ", ".join(f"{name} {v:.1f}" for name, v in values.items()))
    low = {name: v for name, v in values.items() if v < PSNR_MIN_DB}
    assert not low, f"{case}: pictures further than {PSNR_MIN_DB:g} dB from the CPU reference: {low}"


@pytest.mark.parametrize("case", FP8_CASES)
def test_workflow_with_fp8_weights(case, lane):
    """The case with every UNet's weights in float8_e4m3fn on the lane's device (the module's docstring): it
    runs, and Save Image gets finite pictures that are not black."""
    assert lane.fp8["fp8"] and "float8" in lane.fp8["toy_unet"]["dtype"], f"not fp8 weights: {lane.fp8['toy_unet']}"
    _ran_and_saved_pictures(case, lane.fp8, "with fp8 weights")
