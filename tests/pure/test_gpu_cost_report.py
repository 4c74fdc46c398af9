"""The GPU lane's cost report (workshop/benchmarks/gpu_cost.py) on a made-up result: which goal a
run misses and what its table says. The measurements themselves need a GPU (tests/gpu)."""
from __future__ import annotations

import copy

from workshop.benchmarks import gpu_cost


def _row(label, ratio, goal=True, kind="editor", finite=True):
    return {"label": label, "kind": kind, "goal": goal, "seconds_per_step": 0.065 * ratio, "seconds_all": [1.3 * ratio],
            "vs_stock_batch2": ratio, "peak_mib": 3000.0, "finite": finite, "ops_per_step": 5000.0,
            "syncs_per_step": 3.0, "kernels_per_step": 900.0}


def _result():
    family = {"image_side": 512, "sampling": [_row("stock KSampler, batch 1", 0.8, False, "stock"),
                                              _row("stock KSampler, batch 2 (the pair)", 1.0, False, "stock"),
                                              _row("MasaCtrl", 1.05), _row("with local blend", 1.5, goal=False)],
              "workflow": {"label": "SD1.5 - Prompt-to-Prompt edit", "baseline": "stock text-to-image, batch 1",
                           "image_side": 512, "seconds": 5.0, "baseline_seconds": 3.0, "vs_t2i_batch1": 5 / 3,
                           "image_spread": 0.2, "baseline_image_spread": 0.2}}
    sdxl = copy.deepcopy(family)
    sdxl["workflow"]["vs_t2i_batch1"] = 3.0   # reported, no goal for SDXL
    return {"device": "NVIDIA H100", "torch": "2.11", "tiny": False, "host_defaults": {"unet": "torch.float16"},
            "goals": gpu_cost.GOALS, "families": {"sd15": family, "sdxl": sdxl}}


def test_a_run_within_the_goals_passes():
    result = _result()
    assert gpu_cost.goal_failures(result) == []
    text = gpu_cost.table(result)
    assert "NVIDIA H100" in text and "| SD1.5, 512 px | MasaCtrl (goal <= 1.1x) | 68.2 | 1.05x | 5,000 | 3.0 | 900 | 2.93 GiB |" in text
    assert "| SD1.5, 512 px | SD1.5 - Prompt-to-Prompt edit | 5.00 | 3.00 | 1.67x (goal <= 2.0x) |" in text


def test_each_missed_goal_is_named():
    result = _result()
    result["families"]["sd15"]["sampling"][2]["vs_stock_batch2"] = 1.2
    result["families"]["sdxl"]["sampling"][3]["finite"] = False
    result["families"]["sd15"]["workflow"]["vs_t2i_batch1"] = 2.5
    result["families"]["sdxl"]["workflow"]["image_spread"] = 0.0
    failures = gpu_cost.goal_failures(result)
    assert failures == ["sd15: MasaCtrl: 1.20x stock batch 2 (goal <= 1.1)",
                        "sd15: SD1.5 - Prompt-to-Prompt edit: 2.50x stock text-to-image, batch 1 (goal <= 2.0)",
                        "sdxl: with local blend: the sampled latent is not finite",
                        "sdxl: SD1.5 - Prompt-to-Prompt edit: the saved picture is blank (black or not finite)"]
