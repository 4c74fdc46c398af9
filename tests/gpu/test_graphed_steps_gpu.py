"""GPU lane: the toy flow teacher's and its guidance distillation's CUDA-graph steps (``train_flow --cuda-graph``,
``workshop/toyworld/graphed_steps.py``) on CUDA, in subprocesses (the host booted there): each stage's forward and
backward (the distillation's with the teacher's guided velocity and the attention loss) are captured (no eager
fallback), the first replay's loss equals the same step's loss run eagerly, and the runs train to finite weights. On the CPU
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


def test_the_flow_teacher_s_and_its_distillation_s_graphed_steps(cuda_only, lane_env, lane_out, tmp_path):
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path)
    log = tmp_path / "graphed.log"
    common = [sys.executable, "-m", "workshop.toyworld.train_flow", "--out", str(tmp_path), "--device", cuda_only,
              "--batch", "4", "--steps", "40", "--warmup", "5", "--res", "128", "--lowres-steps", "0", "--cuda-graph",
              "--graph-chunk", "16"]
    # the teacher, then its student (with the attention loss, the default, and guidance 1 in a share)
    with open(log, "w") as f:
        for stage in (["--stage", "dit"], ["--stage", "distil", "--distil-steps", "20", "--guidance-one", "0.2"]):
            done = subprocess.run(common + stage, cwd=REPO, env=lane_env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=600)
            if done.returncode:
                break
    lane_out(log)
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    for name, steps in (("toy_dit_ema.pt", 40), ("toy_student_ema.pt", 20)):
        state = torch.load(tmp_path / name, weights_only=False, map_location="cpu")
        assert state["step"] == steps and all(torch.isfinite(v).all() for v in state["ema"].values())
    if cuda_only != "cuda":
        assert text.count("without CUDA: the chunked inputs, stepped eagerly") == 2
        return
    assert "training eagerly" not in text, text[-3000:]
    found = re.findall(r"CUDA graph captured at step 1: its loss ([0-9.]+), eagerly ([0-9.]+)", text)
    assert len(found) == 2, text[-3000:]
    for replayed, eager in found:
        assert float(replayed) == pytest.approx(float(eager), rel=1e-4)
