"""GPU lane: the toy flow teacher's CUDA-graph step (``train_flow --cuda-graph``, ``workshop/toyworld/graphed_steps.py``)
on CUDA, in a subprocess (the host booted there): the forward and backward are captured (no eager fallback), the
first replay's loss equals the same step's loss run eagerly, and the run trains to finite weights. On the CPU
(``INVERTEDIT_GPU_LANE_DEVICE=cpu``) the same command runs the chunked inputs eagerly: the lane's code path."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]


def test_the_flow_teacher_s_graphed_step(cuda_only, lane_env, lane_out, tmp_path):
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path)
    log = tmp_path / "graphed.log"
    command = [sys.executable, "-m", "workshop.toyworld.train_flow", "--stage", "dit", "--out", str(tmp_path),
               "--device", cuda_only, "--batch", "4", "--steps", "40", "--warmup", "5", "--res", "128",
               "--lowres-steps", "0", "--cuda-graph", "--graph-chunk", "16"]
    with open(log, "w") as f:
        done = subprocess.run(command, cwd=REPO, env=lane_env, stdout=f, stderr=subprocess.STDOUT, timeout=600)
    lane_out(log)
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    state = torch.load(tmp_path / "toy_dit_ema.pt", weights_only=False, map_location="cpu")
    assert state["step"] == 40 and all(torch.isfinite(v).all() for v in state["ema"].values())
    if cuda_only != "cuda":
        assert "without CUDA: the chunked inputs, stepped eagerly" in text
        return
    assert "training eagerly" not in text, text[-3000:]
    found = re.search(r"CUDA graph captured at step 1: its loss ([0-9.]+), eagerly ([0-9.]+)", text)
    assert found, text[-3000:]
    assert float(found[1]) == pytest.approx(float(found[2]), rel=1e-4)
