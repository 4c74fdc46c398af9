"""How few steps the flow inverters and FlowEdit still work at (issue 78: "one step wrecks the picture without a
word"): the shipped Flux workflows on the Toy World Model's flow DiT, run as ``toyworld_flow.py`` runs them, at a
sweep of step counts, on world 2's first edit cases.

    python -m workshop.benchmarks.flow_few_steps [--cases 6] [--steps 1,2,3,4,6,8]

Rows: Flow Invert (RF-Solver and Euler) reconstruction with the source prompt (PSNR to the source image) and its
naive edit, RF-Inversion, Stable Flow and FlowEdit (n_max the steps, where fewer than the workflow's 24), each at
the steps given and at the workflow's own. Per row and step count: the mean PSNR to the source (reconstructions) or
the share of whole cases that succeed as ``toyworld2.case_metrics`` judges them (edits), with the background PSNR
against the target. The nodes' smallest step counts (``min`` of their ``steps`` widgets) come from this table
(docs/measurements.md, "How few steps"); the sweep lifts them in its own process to run below them.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from workshop.benchmarks.toyworld2 import case_metrics, changed_region
from workshop.benchmarks.toyworld_flow import _panels, case_overrides, object_box, run_workflow_for
from workshop.toyworld import scenes as S

RES = 256
# row: (workflow, the overrides at ``n`` steps, panel, is_edit, the workflow's own steps)
ROWS = {
    "Flow Invert, RF-Solver: reconstruction": ("Flux - Flow inversion and edit", lambda n: {
        "InvertEditFlowInvert": {"solver": "rf-solver", "steps": n}, "InvertEditFlowSampler": {"solver": "rf-solver"}},
        "rec", False, 25),
    "Flow Invert, RF-Solver: edit": ("Flux - Flow inversion and edit", lambda n: {
        "InvertEditFlowInvert": {"solver": "rf-solver", "steps": n}, "InvertEditFlowSampler": {"solver": "rf-solver"}},
        "edit", True, 25),
    "Flow Invert, Euler: reconstruction": ("Flux - Flow inversion and edit", lambda n: {
        "InvertEditFlowInvert": {"solver": "euler", "steps": n}, "InvertEditFlowSampler": {"solver": "euler"}},
        "rec", False, 50),
    "RF-Inversion: edit": ("Flux - RF-Inversion edit", lambda n: {"InvertEditRFInversionInvert": {"steps": n}},
                           "edit", True, 28),
    "Stable Flow: edit": ("Flux - Stable Flow", lambda n: {"InvertEditStableFlowInvert": {"steps": n}},
                          "edit", True, 50),
    "FlowEdit: edit": ("Flux - FlowEdit", lambda n: {"BasicScheduler": {"steps": n},
                                                     "InvertEditFlowEdit": {"n_max": min(24, n)}}, "edit", True, 28),
}
PANELS = {"Flux - Flow inversion and edit": ("rec", "edit"), "Flux - RF-Inversion edit": ("edit",),
          "Flux - Stable Flow": ("edit",), "Flux - FlowEdit": ("edit",)}


def sweep(host, cases: int, steps: list[int]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="flow-few-steps-"))
    out: dict = {row: {} for row in ROWS}
    for i, case in enumerate(S.edit_cases(cases, seed=0)):
        src_img, src_masks = S.render(case.source, RES)
        tgt_img, tgt_masks = S.render(case.target, RES)
        outside = ~(src_masks.any(0) | tgt_masks.any(0))
        region = changed_region(case, src_masks, tgt_masks)
        image = work / f"case_{i}.png"
        from PIL import Image
        Image.fromarray((src_img * 255).round().byte().numpy()).save(image)
        overrides = case_overrides(case, object_box(case, src_masks, tgt_masks))
        done: dict = {}
        for row, (workflow, at, panel, is_edit, own) in ROWS.items():
            for n in [*steps, own]:
                key = (workflow, repr(at(n)))
                if key not in done:
                    ov = {ref: dict(v) for ref, v in overrides.items()}
                    for ref, values in at(n).items():
                        ov.setdefault(ref, {}).update(values)
                    files = run_workflow_for(host, workflow, ov, image, work / f"{i}_{len(done)}")
                    done[key] = _panels(files, PANELS[workflow])
                img = done[key][panel]
                if is_edit:
                    m = case_metrics(case, True, img, img, tgt_img, outside, region, None)
                    value = (m["case"], m["bg"])
                else:
                    value = (S.psnr(img, src_img), None)
                out[row].setdefault(n if n in steps else "the workflow's", []).append(value)
        print(f"case {i} done", flush=True)
    return out


def table(result: dict) -> str:
    lines = ["| row (the workflow's steps) | " + " | ".join(str(k) for k in next(iter(result.values()))) + " |",
             "|---|" + "---|" * len(next(iter(result.values())))]
    for row, by_steps in result.items():
        cells = []
        for values in by_steps.values():
            if ROWS[row][3]:
                bg = [b for _, b in values if b is not None]
                cells.append(f"{statistics.mean(w for w, _ in values):.0%}, bg {statistics.mean(bg) if bg else float('nan'):.1f} dB")
            else:
                cells.append(f"{statistics.mean(p for p, _ in values):.1f} dB")
        lines.append(f"| {row} ({ROWS[row][4]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--steps", default="1,2,3,4,6,8")
    args = ap.parse_args(argv)
    from workshop.headless.boot import boot

    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="flow-few-steps-host-")))
    # the sweep goes below the nodes' fewest steps, which were set from it: lift them in this process
    host.pack.hostkit.flow_inverters.FEWEST_STEPS.update(dict.fromkeys(host.pack.hostkit.flow_inverters.FEWEST_STEPS, 1))
    host.pack.techniques.flow_edit.glue.FEWEST_STEPS = 1
    result = sweep(host, args.cases, [int(s) for s in args.steps.split(",")])
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
