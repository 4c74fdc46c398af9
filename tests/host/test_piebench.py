"""PIE-Bench on your own checkpoint (``python -m workshop.piebench``, issue 84) on a small PIE-Bench-format set
made from the toy world (``python -m workshop.piebench.toyset``), with two shipped Flux workflows on the toy flow
model (``--builtin toy-flow``) at few steps: FlowEdit's edit and the flow inversion's reconstruction.

Checks that the folder is PIE-Bench's format as PnPInversion reads it, that the tool writes ``evaluate.py``'s CSV
(``file_id``, then ``<method>|<metric>`` in its metric order) and the paper's table (its columns, order and units),
that the weight-free metrics are finite and plausible (the reconstruction keeps the background better than the
edit), that the metrics without weights say "skipped: <why>", and that the edits are kept in PnPInversion's
``<method>/annotation_images/`` layout at the items' size.
"""
from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from workshop.piebench import format as F
from workshop.piebench import table as T
from workshop.piebench.__main__ import main
from workshop.piebench.metrics import METRICS, TABLE
from workshop.piebench.toyset import build

WORKFLOWS = ["Flux - FlowEdit", "Flux - Flow inversion and edit#0"]   # an edit, and the reconstruction (picture 0)
QUICK = ["BasicScheduler.steps=4", "InvertEditFlowEdit.n_max=3", "InvertEditFlowInvert.steps=3"]


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("piebench_toy")
    build(out, cases=3)
    return out


@pytest.fixture(scope="module")
def result(host, toy_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("piebench_out")
    argv = ["--data", str(toy_set), "--workflows", ",".join(WORKFLOWS), "--builtin", "toy-flow", "--out", str(out)]
    for s in QUICK:
        argv += ["--set", s]
    assert main(argv) == 0
    return out


def test_toy_set_is_pie_bench_format(toy_set):
    """PnPInversion's fields, an image per item under ``annotation_images`` at 512 px (their masks' shape), the
    mask's RLE covering the edited object, and prompts with ``[]`` around what differs."""
    mapping = json.loads((toy_set / F.MAPPING_FILE).read_text())
    assert len(mapping) == 3
    for key, item in mapping.items():
        assert set(item) == {"image_path", "original_prompt", "editing_prompt", "editing_instruction",
                             "editing_type_id", "blended_word", "mask"}
        assert key.startswith(item["editing_type_id"]) and item["editing_type_id"] in F.EDITING_TYPES
        with Image.open(toy_set / F.IMAGES / item["image_path"]) as im:
            assert im.size == (512, 512)
        region = F.mask_runs(item["mask"])
        assert 0.005 < region.mean() < 0.9
        assert "[" in item["original_prompt"] + item["editing_prompt"]
        assert item["blended_word"].split()[0] in F.plain(item["original_prompt"])
    kinds = [item["editing_type_id"] for item in mapping.values()]
    assert kinds == ["6", "1", "8"]   # colour, shape, background: world 2's kinds in turn


def test_result_csv_is_evaluate_py_format(result):
    header, rows = T.read_items(result / T.RESULT_CSV)
    assert header == ["file_id"] + [f"{w}|{m}" for w in WORKFLOWS for m in METRICS]
    assert len(rows) == 3 and all(len(r) == len(header) for r in rows)
    for w in WORKFLOWS:
        for metric in ("psnr_unedit_part", "mse_unedit_part", "ssim_unedit_part"):
            values = [float(r[header.index(f"{w}|{metric}")]) for r in rows]
            assert all(math.isfinite(v) for v in values), (w, metric, values)
        for metric in ("structure_distance", "lpips_unedit_part", "clip_similarity_target_image"):
            assert all(r[header.index(f"{w}|{metric}")].startswith("skipped: no ") for r in rows)


def test_summary_is_the_papers_table_and_plausible(result):
    """The paper's columns in its order and units; the reconstruction keeps the background better than the edit
    (higher PSNR and SSIM, lower MSE), each in a plausible range."""
    text = (result / T.SUMMARY_MD).read_text()
    heading = "| Method | Items | " + " | ".join(h for h, _, _ in TABLE) + " |"
    assert heading in text
    assert [h for h, _, _ in TABLE] == ["Structure Distance (x10^3)", "Background PSNR", "Background LPIPS (x10^3)",
                                        "Background MSE (x10^4)", "Background SSIM (x10^2)", "CLIP Similarity Whole",
                                        "CLIP Similarity Edited"]
    import csv
    with open(result / T.SUMMARY_CSV, newline="") as f:
        rows = list(csv.reader(f))
    head, lines = rows[0], {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert head[:2] == ["Method", "Items"] and list(lines) == WORKFLOWS
    edit, rec = lines["Flux - FlowEdit"], lines["Flux - Flow inversion and edit#0"]
    psnr, mse, ssim = "Background PSNR", "Background MSE (x10^4)", "Background SSIM (x10^2)"
    print(f"\nPIE-Bench toy set (3 items, quick settings): FlowEdit PSNR {edit[psnr]}, MSE {edit[mse]}, SSIM {edit[ssim]};"
          f" reconstruction PSNR {rec[psnr]}, MSE {rec[mse]}, SSIM {rec[ssim]}")
    assert 10 < float(edit[psnr]) < float(rec[psnr]) < 60
    assert 0 < float(rec[mse]) < float(edit[mse])   # x10^4
    assert float(edit[ssim]) < float(rec[ssim]) <= 100
    assert edit["Structure Distance (x10^3)"].startswith("skipped: no DINO")


def test_edits_are_kept_in_pnpinversions_layout(result, toy_set):
    mapping = json.loads((toy_set / F.MAPPING_FILE).read_text())
    for w in ("Flux - FlowEdit", "Flux - Flow inversion and edit_0"):
        for item in mapping.values():
            path = (result / w / F.IMAGES / item["image_path"]).with_suffix(".png")
            with Image.open(path) as im:
                assert im.size == (512, 512)   # the toy runs at 256 px; scored at the item's size
