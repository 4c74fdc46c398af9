"""The GPU pilots' summary (``gpu_pilots.sh``: world 2's UNet layouts; ``gpu_flow_pilots.sh``: the
flow DiT's sizes): each pilot's log tail into ``pilots.log``, its last quick evaluation into
``summary.json``, its text-to-image grid into one sheet ``t2i.png``, and the best pilot's weights
(every object right, then objects right) copied out for the machine to bring back.

    python3 -m workshop.toyworld.pilot_summary scenes|flow WORKDIR DEST PRESET [PRESET ...]
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# kind: (log lines kept whole, evaluation files, grid files, grid shrink, the figures printed)
KINDS = {
    "scenes": ("unet step", "eval_*.json", "t2i_*.png", 4,
               ("steps", "loss", "t2i_every_object_right", "t2i_objects_right", "noun_iou_ge_0.5", "binding_gap")),
    "flow": (" step ", "eval_student_*.json", "t2i_student_*.png", 2,
             ("steps", "loss", "t2i_every_object_right", "t2i_objects_right", "t2i_background_right")),
}


def bring_back(kind: str, pilot: Path, dest: Path) -> None:
    """The best pilot's weights into ``dest``: world 2's UNet in 15 MB parts (the machine's limit
    on a file that comes back), the flow model's finished files as they are."""
    if kind == "scenes":
        subprocess.run(["split", "-b", "15M", "-d", str(pilot / "toy_unet.safetensors"),
                        str(dest / "toy_unet.safetensors.part-")], check=True)
    else:
        for name in ("toy_dit.safetensors", "config.json"):
            shutil.copy(pilot / name, dest / name)


def main(argv: list[str]) -> None:
    kind, work, dest, presets = argv[0], Path(argv[1]), Path(argv[2]), argv[3:]
    step_word, evals_glob, grid_glob, shrink, shown = KINDS[kind]
    summary, grids = {}, []
    with open(dest / "pilots.log", "a") as log:
        for p in presets:
            d = work / p
            lines = (d / "train.log").read_text().splitlines() if (d / "train.log").is_file() else []
            keep = [line for line in lines if step_word not in line or line.split("/")[0].endswith("00")]
            log.write(f"==== {p}\n" + "\n".join(keep[-60:]) + "\n")
            evals = sorted(d.glob(evals_glob))
            summary[p] = json.loads(evals[-1].read_text()) if evals else None
            pngs = sorted(d.glob(grid_glob))
            if pngs:
                grids.append(pngs[-1])
    (dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if grids:
        from PIL import Image
        ims = [Image.open(g).convert("RGB") for g in grids]
        ims = [im.resize((im.width // shrink, im.height // shrink)) for im in ims]
        sheet = Image.new("RGB", (max(im.width for im in ims), sum(im.height for im in ims)), "white")
        y = 0
        for im in ims:
            sheet.paste(im, (0, y))
            y += im.height
        sheet.save(dest / "t2i.png")
    done = {p: r for p, r in summary.items() if r}
    if done:
        best = max(done, key=lambda p: (done[p]["t2i_every_object_right"], done[p]["t2i_objects_right"]))
        (dest / "best.txt").write_text(best + "\n")
        bring_back(kind, work / best, dest)
    print(json.dumps({p: (r and {k: r.get(k) for k in shown}) for p, r in summary.items()}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
