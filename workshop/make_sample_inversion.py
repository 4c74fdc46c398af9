#!/usr/bin/env python
"""Write assets/sample_inversion.safetensors: the bundled sample image inverted by
example_workflows/Toy - DDIM inversion and edit.json (Toy World Model, two objects, 50 steps, ddim_uniform), as
its Save Inversion node writes it. example_workflows/Toy - Load a saved inversion.json loads this file; re-run
this script when the toy model or that workflow changes (that workflow's test fails then:
Apply Inversion refuses a stale file).

    python -m workshop.make_sample_inversion
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from workshop.headless.boot import boot
from workshop.headless.runner import run_workflow


def main() -> int:
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="invertedit-sample-inversion-"))
    host = boot(base_dir=work)
    written = run_workflow(REPO / "example_workflows" / "Toy - DDIM inversion and edit.json", work / "out", host=host)
    saved = [p for p in written if p.suffix == ".safetensors"]
    if len(saved) != 1:
        print(f"expected one saved inversion, got {saved}", file=sys.stderr)
        return 1
    dest = REPO / "assets" / "sample_inversion.safetensors"
    shutil.copyfile(saved[0], dest)
    print(f"wrote {dest.relative_to(REPO)} ({dest.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
