"""What the 3D end of a view-set workflow costs against its edit (issue 83): the Toy - Views to 3D (Hunyuan3D-2)
template run headlessly on this machine, each node timed, the seconds of the 3D stage (the Demo 3D Model's tiny
Hunyuan3D-2: Views to Hunyuan3D's image encoder calls, the KSampler of the shape, VAE Decode Hunyuan3D, VoxelToMesh,
SaveGLB) against the edit's (VAE Encode, DDIM Invert, the pair editor and Cross-View Attention, the KSampler (Advanced)
run of the 2V rows, VAE Decode), as a ratio.

    python -m workshop.benchmarks.views_3d_cost            # the template's settings (a card run: minutes)
    python -m workshop.benchmarks.views_3d_cost --quick    # the tests' quick settings

Measured (2026-11-30, this CPU machine: 2 shared cores, torch 2.13 CPU): at the template's settings (the edit: 4 views
at 512 px, DDIM Invert 50 steps, one KSampler (Advanced) run of 8 rows at 50 steps; the 3D end: 256 latent tokens,
20 steps at cfg 7.5, octree 32) the 3D stage 32.9 s (its KSampler 26.2 s, VoxelToMesh 3.4 s, the 4 views' encoder
2.8 s, the volume decode 0.4 s), the edit 522 s (sampling 311 s, inversion 209 s): 0.06 x the edit; at the tests'
quick settings (edit 5 steps, 3D 2 steps, octree 16) 3.2 s against 24.2 s: 0.13 x.

The tiny Hunyuan3D-2 is a mechanics model (0.25 M DiT parameters against the real 2mv's billions): the ratio is the
pack's toy template's, not a real model's; what the 3D stage's cost grows with on any model is its context, 1370 image
tokens a view (DINOv2 at 518 px), read by every block at every step.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

NAME = "Toy - Views to 3D (Hunyuan3D-2)"
STAGE_3D = ("InvertEditDemo3DModel", "InvertEditViewsToHunyuan3D", "ModelSamplingAuraFlow", "EmptyLatentHunyuan3Dv2",
            "KSampler", "VAEDecodeHunyuan3D", "VoxelToMesh", "SaveGLB")
SETUP = ("InvertEditToyModel", "LoadImage", "MarkdownNote")   # neither stage's


def measure(quick: bool = False) -> dict:
    """Seconds by node class of one run of the template, and the two stages' totals and ratio."""
    from workshop.headless.boot import boot

    host = boot(base_dir=tempfile.mkdtemp())
    import execution

    from workshop import make_workflows
    from workshop.headless import runner

    repo = Path(__file__).resolve().parents[2]
    workflow = json.loads((repo / "example_workflows" / f"{NAME}.json").read_text(encoding="utf-8"))
    prompt = runner.prepare_prompt(workflow, overrides=make_workflows.toy_overrides(NAME, quick=quick), host=host)
    seconds: dict[str, float] = {}
    original = execution.get_output_data

    async def timed(prompt_id, unique_id, obj, input_data_all, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await original(prompt_id, unique_id, obj, input_data_all, *args, **kwargs)
        finally:
            kind = prompt[unique_id]["class_type"]
            seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started

    execution.get_output_data = timed
    try:
        runner.execute(prompt, host=host)
    finally:
        execution.get_output_data = original
    stage = sum(s for k, s in seconds.items() if k in STAGE_3D)
    edit = sum(s for k, s in seconds.items() if k not in STAGE_3D and k not in SETUP)
    return {"nodes": seconds, "3d_s": stage, "edit_s": edit, "ratio": stage / edit}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tests' quick settings (QUICK_TOY)")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    for kind, s in sorted(result["nodes"].items(), key=lambda kv: -kv[1]):
        print(f"{kind:34s} {s:8.2f} s  {'3D' if kind in STAGE_3D else '' if kind in SETUP else 'edit'}")
    print(f"3D stage {result['3d_s']:.1f} s, edit {result['edit_s']:.1f} s: the 3D stage costs {result['ratio']:.2f} x "
          f"the edit")


if __name__ == "__main__":
    main()
