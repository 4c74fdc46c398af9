#!/usr/bin/env bash
# Issues 26/27: the toy flow DiT's sizes piloted side by side on one GPU (docs/toyworld.md, "The flow
# world"): every preset's CFG teacher trained from its seeded start (batch $BATCH at 256 px, AdamW 5e-4,
# warm-up 200, cosine to a tenth, EMA 0.999) for the same wall time ($MIN minutes: --fit-minutes sets
# each cosine's horizon to what fits), then guidance-distilled with the attention loss ($DMIN minutes),
# then the quick text-to-image evaluation of the student (40 held-out captions, Euler 20, guidance 4).
# On the GPU machine, from the project root:  MIN=5 DMIN=1.5 bash .gpu/run.sh bash workshop/toyworld/gpu_flow_pilots.sh
# Writes to $OUT (or ./flow-pilots-out): summary.json, pilots.log, t2i.png (each pilot's first 20 samples),
# and the best pilot's finished model (toy_dit.safetensors, config.json: drop into models/toyworld-flow/).
set -u
MIN=${MIN:-5}; DMIN=${DMIN:-1.5}
PRESETS=${PRESETS:-"h128-d2s4 h128-d4s8 h192-d3s6"}
DEST=${OUT:-flow-pilots-out}
WORKDIR=${PILOTS_WORK:-/tmp/flow-pilots}
DEVICE=${DEVICE:-cuda}; BATCH=${BATCH:-128}   # (a CPU smoke test: DEVICE=cpu BATCH=2 MIN=0.1 DMIN=0.1)
mkdir -p "$DEST" "$WORKDIR"
for p in $PRESETS; do
  d=$WORKDIR/$p; mkdir -p "$d"; cp models/toyworld-flow/toy_vae.safetensors "$d/"
  A="--out $d --preset $p --threads 2 --device $DEVICE --batch $BATCH"
  ( python3 -m workshop.toyworld.train_flow --stage dit $A --steps 100000 --lowres-steps 0 --warmup 200 \
        --fit-minutes "$MIN" --ckpt-minutes 100 > "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage distil $A --distil-steps 100000 --lowres-steps 0 \
        --fit-minutes "$DMIN" --ckpt-minutes 100 >> "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage finish $A >> "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage eval --eval-student $A >> "$d/train.log" 2>&1 ) &
done
( sleep 120; nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total --format=csv >> "$DEST/pilots.log" 2>&1 ) &
wait
python3 - "$WORKDIR" "$DEST" $PRESETS <<'PY'
import json, shutil, sys
from pathlib import Path
work, dest, presets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
summary, grids = {}, []
with open(dest / "pilots.log", "a") as log:
    for p in presets:
        d = work / p
        lines = (d / "train.log").read_text().splitlines() if (d / "train.log").is_file() else []
        keep = [l for l in lines if " step " not in l or l.split("/")[0].endswith("00")]
        log.write(f"==== {p}\n" + "\n".join(keep[-60:]) + "\n")
        evals = sorted(d.glob("eval_student_*.json"))
        summary[p] = json.loads(evals[-1].read_text()) if evals else None
        pngs = sorted(d.glob("t2i_student_*.png"))
        if pngs:
            grids.append((p, pngs[-1]))
(dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
if grids:
    from PIL import Image
    ims = [Image.open(g).convert("RGB") for _, g in grids]
    ims = [im.resize((im.width // 2, im.height // 2)) for im in ims]
    W = max(im.width for im in ims); H = sum(im.height for im in ims)
    sheet = Image.new("RGB", (W, H), "white"); y = 0
    for im in ims:
        sheet.paste(im, (0, y)); y += im.height
    sheet.save(dest / "t2i.png")
done = {p: r for p, r in summary.items() if r}
if done:
    best = max(done, key=lambda p: (done[p]["t2i_every_object_right"], done[p]["t2i_objects_right"]))
    (dest / "best.txt").write_text(best + "\n")
    for name in ("toy_dit.safetensors", "config.json"):
        shutil.copy(work / best / name, dest / name)
print(json.dumps({p: (r and {k: r[k] for k in ("steps", "loss", "t2i_every_object_right", "t2i_objects_right",
                                                   "t2i_background_right")}) for p, r in summary.items()}, indent=1))
PY
