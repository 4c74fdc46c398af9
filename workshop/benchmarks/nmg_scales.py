"""Noise Map Guidance at larger scales than the paper's (issue 78: "NMG at its new maxima destroys the result"): the
shipped ``Toy - Noise Map Guidance edit`` workflow on the Toy World Model (world 2's sample, red circle -> yellow circle,
the blue square to keep; 20 steps, the runner's quick setting), at each setting, its strips side by side in one sheet
to look at.

    python -m workshop.benchmarks.nmg_scales [--out /tmp/nmg-scales] [--settings "noise_map_scale=20,grad_scale=15000"]

Each setting is ``name=value`` pairs of the node's inputs, ';'-separated settings; the paper's (10, 5000) runs first.
The node's widget limits (``NOISE_MAP_SCALE_MAX``, ``GRAD_SCALE_MAX``, set from this look) are lifted in this
process, so that the settings past them run.
Prints the sheet's path: each row a setting, its reconstruction (source) then its edit (target).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DEFAULT = ("noise_map_scale=20; noise_map_scale=30; noise_map_scale=100; grad_scale=7500; grad_scale=10000; "
           "grad_scale=15000; grad_scale=25000; grad_scale=50000")


def settings_of(text: str) -> list[dict[str, float]]:
    out = []
    for setting in text.split(";"):
        pairs = [p.split("=") for p in setting.split(",") if p.strip()]
        out.append({k.strip(): float(v) for k, v in pairs})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="nmg-scales-")))
    ap.add_argument("--settings", default=DEFAULT)
    args = ap.parse_args(argv)
    from PIL import Image, ImageDraw

    from workshop import make_workflows as M
    from workshop.headless.boot import boot
    from workshop.headless.runner import run_workflow

    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="nmg-scales-host-")))
    # the settings looked at go past the node's limits, which were set from this look: lift them in this process
    limits = host.pack.techniques.noise_map.nodes
    limits.NOISE_MAP_SCALE_MAX, limits.GRAD_SCALE_MAX = 1000.0, 1e6
    path = M.REPO / "example_workflows" / "Toy - Noise Map Guidance edit.json"
    rows = []
    for change in [{}, *settings_of(args.settings)]:
        overrides = M.toy_overrides("Toy - Noise Map Guidance edit", quick=True)
        overrides.setdefault("InvertEditNoiseMapGuidance", {}).update(change)
        label = ", ".join(f"{k} {v:g}" for k, v in change.items()) or "the paper's (10, 5000)"
        files = run_workflow(path, args.out / label.replace(" ", "_").replace(",", ""), overrides=overrides, host=host)
        strips = [Image.open(f).convert("RGB") for f in sorted(files) if "noise_map_guidance" in f.name]
        row = Image.new("RGB", (sum(s.width for s in strips), strips[0].height), "white")
        x = 0
        for s in strips:
            row.paste(s, (x, 0))
            x += s.width
        ImageDraw.Draw(row).text((6, 6), label, fill="white")
        rows.append(row)
        print(f"{label}: {', '.join(str(f) for f in files)}", flush=True)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(args.out / "sheet.png")
    print(f"sheet: {args.out / 'sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
