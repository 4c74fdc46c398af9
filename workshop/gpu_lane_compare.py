"""The GPU lane's picture check done at home: a GPU worker's results (brought back from a device
call, ``workshop/gpu_one_call.sh``) against a CPU worker's run of the same cases here
(``python tests/gpu/gpu_lane_worker.py --device cpu --out DIR --only ...``), with the lane's own
checks (``tests/gpu/test_gpu_workflows.py``: finite, not black, the same pictures, PSNR against the
CPU run). Prints a markdown table.

    python -m workshop.gpu_lane_compare GPU_DIR CPU_DIR
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PSNR_MIN_DB = 25.0   # the lane's threshold (tests/gpu/test_gpu_workflows.py's docstring says why)
NOT_BLACK = 8        # of 255: a picture whose brightest pixel is darker is black


def picture(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def compare(gpu_dir: Path, cpu_dir: Path) -> tuple[list[str], int]:
    gpu = json.loads((gpu_dir / "results.json").read_text())
    cpu = json.loads((cpu_dir / "results.json").read_text())
    lines = [f"Workflows on {gpu['device_name']} (host defaults {gpu['host_defaults']}; the Toy World Model's UNet "
             f"{gpu.get('toy_unet')}) against the CPU (fp32); PSNR threshold {PSNR_MIN_DB:g} dB", "",
             "| workflow | GPU s | CPU s | lowest PSNR vs CPU (dB) | verdict |", "|---|---|---|---|---|"]
    failed = 0
    for case, g in gpu["cases"].items():
        c = cpu["cases"].get(case)
        verdict, low = "ok", float("nan")
        if not g["ok"]:
            message = (g.get("error") or "").split("\n")[0][:160]
            verdict = f"failed on the GPU ({g['stage']}): {message}"
        elif not all(s["finite"] for s in g["image_stats"]):
            verdict = "NaN or inf handed to Save Image"
        elif c is None or not c["ok"]:
            verdict = "no CPU reference"
        else:
            mine = {Path(p).name: gpu_dir / p for p in g["images"]}
            theirs = {Path(p).name: cpu_dir / p for p in c["images"]}
            missing = [n for n, p in mine.items() if not p.is_file()]
            if sorted(mine) != sorted(theirs):
                verdict = "different pictures saved"
            elif missing:
                verdict = f"{len(missing)} GPU pictures not brought back"
            else:
                values = []
                for name in sorted(mine):
                    a, b = picture(mine[name]), picture(theirs[name])
                    if a.max() < NOT_BLACK:
                        verdict = f"black picture {name}"
                    values.append(psnr(a, b))
                low = min(values)
                if verdict == "ok" and low < PSNR_MIN_DB:
                    verdict = f"further than {PSNR_MIN_DB:g} dB from the CPU"
        failed += verdict != "ok"
        cs = c.get("seconds") if c else None
        lines.append(f"| {case} | {g.get('seconds') or float('nan'):.1f} | {cs or float('nan'):.1f} | "
                     f"{'identical' if math.isinf(low) else format(low, '.1f')} | {verdict} |")
    return lines, failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gpu_dir", type=Path)
    ap.add_argument("cpu_dir", type=Path)
    args = ap.parse_args(argv)
    lines, failed = compare(args.gpu_dir, args.cpu_dir)
    print("\n".join(lines))
    print(f"\n{failed} of {len(lines) - 4} cases not ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
