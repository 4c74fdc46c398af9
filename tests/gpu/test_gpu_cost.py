"""GPU lane, part 2: the attention editors' cost at real size against stock, with the host's
default GPU settings (``workshop/benchmarks/gpu_cost.py``: random-weight SD1.5 and SDXL
checkpoints built on the machine, written with ``comfy.sd.save_checkpoint`` into a temporary
folder and loaded with the stock Load Checkpoint).

Issue 23's goals, asserted: every attention editor's sampling within 1.1x the stock KSampler on the
same batch of 2 (seconds per step, each editor active at every step), the whole shipped SD1.5
Prompt-to-Prompt workflow within 2.0x stock text-to-image at batch 1; every sampled latent finite,
no saved picture blank. One benchmark process per family (each fits the device tool's 10 minutes).
The table and JSON go to INVERTEDIT_GPU_LANE_OUT where it is set (docs/measurements.md quotes them).
With INVERTEDIT_GPU_LANE_DEVICE=cpu the same code runs at tiny size on the CPU and the goals are
only reported: CPU figures of tiny UNets say nothing about a GPU.
"""
from __future__ import annotations


import pytest

pytestmark = pytest.mark.gpu

TIMEOUT_S = 1800


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_attention_editors_cost_at_real_size(family, cuda_only, tmp_path, benchmark_json, lane_out):
    from workshop.benchmarks import gpu_cost

    out = tmp_path / f"gpu_cost_{family}.json"
    command = ["-m", "workshop.benchmarks.gpu_cost", "--device", cuda_only, "--families", family, "--json", str(out)]
    if cuda_only == "cpu":
        command += ["--tiny", "--steps", "2"]
    result = benchmark_json(command, out, tmp_path / f"gpu_cost_{family}.log", timeout=TIMEOUT_S)
    report = gpu_cost.table(result)
    (tmp_path / f"gpu_cost_{family}.md").write_text(report + "\n")
    lane_out(tmp_path / f"gpu_cost_{family}.md")
    print(report)
    failures = gpu_cost.goal_failures(result)
    if cuda_only == "cpu":
        failures = [f for f in failures if "goal <=" not in f]   # a code-path check: only finiteness counts
    assert not failures, "\n".join(failures)
