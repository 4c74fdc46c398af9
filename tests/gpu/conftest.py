"""The GPU lane (issue 23): tests marked ``gpu`` (``python -m pytest -m gpu tests/gpu``) that run
only where CUDA is present; elsewhere every one of them is skipped with one loud line in the
run's summary. They run the host in subprocesses (``gpu_lane_worker.py``, the benchmark), one per
device setting, so they never share a booted host with the CPU tests of the same session.

Environment:
- ``INVERTEDIT_GPU_LANE_OUT``: a folder for the lane's results (the worker's JSON, the PSNR table,
  the benchmark's JSON, table and log), e.g. ``$OUT`` of the device tool.
- ``INVERTEDIT_GPU_LANE_DEVICE=cpu``: run the lane's code path on a CPU (the "GPU" side on the CPU
  too, the benchmark with ``--tiny``, its goals reported, not asserted): a check of the lane
  itself, never a GPU result.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from workshop.headless.host import find_host, host_importable, host_missing_reason

GPU_SKIP_LINE = ("GPU LANE SKIPPED: no CUDA device (torch.cuda.is_available() is False); run "
                 "`python -m pytest -m gpu tests/gpu` on a CUDA machine, see docs/testing.md")
LANE_DEVICE = os.environ.get("INVERTEDIT_GPU_LANE_DEVICE", "cuda")


@pytest.fixture(scope="session", autouse=True)
def cuda_only(skip_loudly):
    """Skips the lane, loudly, without CUDA (unless INVERTEDIT_GPU_LANE_DEVICE=cpu) or without the host."""
    if LANE_DEVICE not in ("cuda", "cpu"):
        pytest.fail(f"INVERTEDIT_GPU_LANE_DEVICE={LANE_DEVICE!r}: use cuda (the default) or cpu")
    if LANE_DEVICE == "cuda" and not torch.cuda.is_available():
        skip_loudly(GPU_SKIP_LINE)
    host = find_host()
    if host is None or host_importable() != host:
        skip_loudly("GPU LANE SKIPPED: ComfyUI was not found or is not registered with this Python ("
                    + host_missing_reason() + "); run scripts/setup.sh (on a GPU machine: ../shared/tools/gpu/run.sh)")
    return LANE_DEVICE


@pytest.fixture(scope="session")
def lane_out():
    """``lane_out(path)``: copy a result file into INVERTEDIT_GPU_LANE_OUT, where it is set."""
    folder = os.environ.get("INVERTEDIT_GPU_LANE_OUT")

    def keep(path: Path, name: str | None = None) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(folder) / (name or Path(path).name))
    return keep


@pytest.fixture(scope="session")
def lane_env() -> dict:
    """The environment of the lane's subprocesses: the repository root importable (``workshop``)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""), PYTHONUNBUFFERED="1")


@pytest.fixture(scope="session")
def benchmark_json(lane_env, lane_out):
    """``benchmark_json(command, out, log, timeout)``: run a benchmark's ``command`` (which writes its JSON to
    ``out``) from the repository root with its output in ``log``; both kept (``lane_out``); returns the JSON.
    Fails with the log's end where the command fails."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]

    def run(command: list[str], out: Path, log: Path, timeout: float) -> dict:
        with open(log, "w") as f:
            done = subprocess.run([sys.executable, *command], cwd=root, env=lane_env, stdout=f,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        lane_out(log)
        assert done.returncode == 0, f"the benchmark failed; its log ends:\n{log.read_text(errors='replace')[-4000:]}"
        lane_out(out)
        return json.loads(out.read_text())
    return run
