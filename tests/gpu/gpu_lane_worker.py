"""The GPU lane's workflow runs, one process per device setting (the host boots once per process,
with one device: ``workshop.headless.boot``), so that the lane never shares a host with the CPU
tests of the same pytest session.

    python tests/gpu/gpu_lane_worker.py --device cuda|cpu --out DIR [--only CASE ...] [--threads N] [--fp8]

``--device cuda`` boots the host with its own defaults (no ``--cpu``, nothing forced: on an NVIDIA
GPU it picks an fp16 UNet, a bf16 VAE, PyTorch SDPA and TF32 for a checkpoint it loads; the UNet
dtype the Toy World Model got is recorded beside them); ``--device cpu`` is the CPU fp32 reference
the host tests run. ``--fp8`` loads every UNet with float8_e4m3fn weights, as the host does with
``--fp8_e4m3fn-unet`` or an fp8 checkpoint (ComfyUI's flux1-dev-fp8), computed in the half dtype the
host casts them to there; the exact judge's checks are left out (fp8 weights draw another picture of
the toy world: ``tests/host/test_half_precision.py``). Every case is a shipped workflow prepared exactly as
``tests/host/test_workflows.py::test_workflow_runs_headless`` prepares it (a workflow built on Load
Checkpoint runs on the Toy World Model with the toy world's prompts; the quick step counts), and
each SDXL checkpoint workflow also on the Demo Model's SDXL layout as
``test_sdxl_workflow_runs_on_the_sdxl_layout`` does. Each is executed and checked by that module's
own ``_run_and_check`` (every Save Image wrote pictures of the right size that carry the workflow,
and the exact judge's ``OUTPUT_CHECKS``); a failure is recorded, not raised. Every IMAGE a Save
Image node receives is checked for NaN/inf before it is quantised (a NaN picture saves as black).

Writes ``DIR/results.json`` (the host's device and precisions; per case: ok, the stage and message
of a failure, seconds, the IMAGE statistics, the saved pictures) and the pictures themselves as
``DIR/images/<n>/<SaveImage id>_<k>.png`` for the comparison with the other device.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_WORKFLOWS = REPO / "tests" / "host" / "test_workflows.py"
DEMO_SDXL = "demo-sdxl"


def workflow_tests_module():
    """``tests/host/test_workflows.py`` as a module (imported by path under its own name: ``tests``
    could resolve to the host's own tests folder); it imports nothing of the host at import time."""
    name = "invertedit_gpu_lane_test_workflows"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TEST_WORKFLOWS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def cases() -> list[dict]:
    """The lane's cases in order: ``{"id", "path", "layout"}``; layout "toy" for every shipped
    workflow as test_workflow_runs_headless runs it, DEMO_SDXL for the SDXL checkpoint workflows'
    second run."""
    tw = workflow_tests_module()
    out = [{"id": p.stem, "path": str(p), "layout": "toy"} for p in tw.WORKFLOW_FILES]
    out += [{"id": f"{p.stem} [{DEMO_SDXL}]", "path": str(p), "layout": DEMO_SDXL} for p in tw.SDXL_FILES]
    return sorted(out, key=lambda case: TRAINING_LAST.index(case["id"]) + 1 if case["id"] in TRAINING_LAST else 0)


# The workflows that train (minutes on a GPU at their full settings), after every other case, so that a
# call cut off at its time limit has run the rest: on an H100 the alphabetical order spent 243 of its
# 400 s on DreamBooth Fine-Tune and never reached seven workflows. The text-encoder training first.
TRAINING_LAST = ("Toy - Custom Diffusion subject", "Toy - Textual Inversion word", "Toy - DreamBooth subject and Custom-Edit", "Toy - Imagic edit",
                 "Toy - DreamBooth fine-tune", "Toy - Custom-Edit (your subject into a photo)")


class _Recording:
    """The runner module, with ``execute`` keeping the UI outputs of the last run."""

    def __init__(self, runner):
        self._runner = runner
        self.outputs = None

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def execute(self, *args, **kwargs):
        self.outputs = self._runner.execute(*args, **kwargs)
        return self.outputs


def _watch_saved_images(nodes, stats: list) -> None:
    """Record each IMAGE batch Save Image (and Preview Image) receives: finite, range, mean."""
    import torch

    original = nodes.SaveImage.save_images

    def save_images(self, images, *args, **kwargs):
        clean = torch.nan_to_num(images.float(), nan=0.0, posinf=0.0, neginf=0.0)
        stats.append({"finite": bool(torch.isfinite(images).all()), "shape": list(images.shape),
                      "min": float(clean.min()), "max": float(clean.max()), "mean": float(clean.mean())})
        return original(self, images, *args, **kwargs)

    nodes.SaveImage.save_images = save_images


def run_case(case: dict, n: int, host, runner, out: Path, stats: list, judge: bool = True) -> dict:
    tw = workflow_tests_module()
    path = Path(case["path"])
    workflow = json.loads(path.read_text(encoding="utf-8"))
    recording = _Recording(runner)
    stats.clear()
    record: dict = {"ok": False, "stage": "prepare", "error": None, "seconds": None, "images": [], "image_stats": stats}
    try:
        if case["layout"] == DEMO_SDXL:   # as test_sdxl_workflow_runs_on_the_sdxl_layout: random weights draw noise
            (prompt, size), check_pictures = tw.sdxl_layout_prompt(path, workflow, host, runner), False
        else:                             # as test_workflow_runs_headless
            prompt, size, check_pictures, _ = tw.headless_prompt(path, workflow, host, runner)
        record["stage"] = "execute"
        started = time.perf_counter()
        tw._run_and_check(path, prompt, workflow, host, recording, size=size, check_pictures=check_pictures and judge)
        record.update(ok=True, stage=None, seconds=time.perf_counter() - started)
    except Exception as e:   # recorded for the test to report
        if recording.outputs is not None:
            record["stage"] = "check"   # executed; the pictures or the judge failed
        trace = getattr(e, "traceback", "") or traceback.format_exc()
        if not isinstance(trace, str):
            trace = "".join(trace)
        record["error"] = f"{type(e).__name__}: {str(e)[:3000]}\n...\n{trace[-3000:]}"   # the message, then the innermost frames
    if recording.outputs is not None:
        folder = out / "images" / str(n)
        folder.mkdir(parents=True, exist_ok=True)
        for key in sorted(recording.outputs):
            for k, file in enumerate(runner.saved_images({key: recording.outputs[key]})):
                dest = folder / f"{key}_{k}.png"
                shutil.copyfile(file, dest)
                record["images"].append(str(dest.relative_to(out)))
    record["image_stats"] = list(stats)
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=None, help="case ids (default: every case)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--fp8", action="store_true", help="every UNet with float8_e4m3fn weights (--fp8_e4m3fn-unet)")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from workshop.benchmarks.gpu_cost import host_defaults
    from workshop.headless import runner
    from workshop.headless.boot import boot

    host = boot(base_dir=out / "host", cpu=args.device == "cpu")
    import comfy.model_management as mm
    from comfy.cli_args import args as host_args

    host_args.fp8_e4m3fn_unet = args.fp8   # read when a UNet is loaded
    device = mm.get_torch_device()
    results = {"device": args.device, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
               "torch": torch.__version__, "host_args_cpu": bool(host_args.cpu), "host_defaults": host_defaults(device),
               "fp8": args.fp8, "cases": {}}
    from workshop.headless.calls import builtin_model
    from workshop import make_workflows

    toy = builtin_model(host, make_workflows.TOY_BUILTIN)[0].model   # the model the checkpoint workflows run on
    results["toy_unet"] = {"dtype": str(toy.get_dtype()), "manual_cast": str(toy.manual_cast_dtype)}
    del toy
    if device.type != args.device:
        results["error"] = f"the host runs on {device}, not {args.device}"
    else:
        stats: list = []
        _watch_saved_images(host.nodes, stats)
        for n, case in enumerate(cases()):
            if args.only is not None and case["id"] not in args.only:
                continue
            record = run_case(case, n, host, runner, out, stats, judge=not args.fp8)
            results["cases"][case["id"]] = record
            print(f"{case['id']}: {'ok' if record['ok'] else 'FAILED at ' + record['stage']}"
                  + (f" in {record['seconds']:.1f} s" if record["ok"] else ""), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))   # so far: a run cut off keeps its cases
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return 0 if "error" not in results else 2


if __name__ == "__main__":
    sys.exit(main())
