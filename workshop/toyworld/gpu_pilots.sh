#!/usr/bin/env bash
# Issue 29's architecture pilots, side by side on one GPU (toyworld/SCENES-NOTES.md, "GPU pilots"):
# every preset trained from its seeded start with the shipped model's GPU recipe (bound encoder,
# batch 128 at 512 px, AdamW 1e-3, warm-up 200, cosine to a tenth, EMA 0.999) for the same wall
# time (--fit-minutes sets each cosine's horizon to what fits), then the quick evaluation
# (--stage eval: 60 held-out captions, 60 scenes' noun attention, the binding probe) on the GPU.
# On the GPU machine, from the project root:  MIN=6.5 bash .gpu/run.sh bash workshop/toyworld/gpu_pilots.sh
# Writes to $OUT (or ./pilots-out): summary.json, pilots.log, t2i.png (each pilot's first 20 samples,
# one row of pilots each), and the best pilot's EMA weights (toy_unet.safetensors.part-*).
set -u
MIN=${MIN:-6.5}
PRESETS=${PRESETS:-"L64-a4 L64-a48 L64-a4-d2 L64-a4x"}
DEST=${OUT:-pilots-out}
WORKDIR=${PILOTS_WORK:-/tmp/pilots}
DEVICE=${DEVICE:-cuda}; BATCH=${BATCH:-128}; EVAL_ARGS=${EVAL_ARGS:-}   # (a CPU smoke test: DEVICE=cpu BATCH=2)
mkdir -p "$DEST" "$WORKDIR"
for p in $PRESETS; do
  d=$WORKDIR/$p; mkdir -p "$d"; cp models/toyworld2/toy_vae.safetensors "$d/"
  A="--out $d --preset $p --text-encoder bound --threads 2"
  ( python3 -m workshop.toyworld.train_scenes --stage unet $A --device "$DEVICE" --unet-batch "$BATCH" --unet-steps 4800 \
        --lowres-steps 0 --warmup 200 --fit-minutes "$MIN" --max-minutes "$(python3 -c "print($MIN + 1)")" \
        --ckpt-minutes 100 > "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_scenes --stage eval $A --eval-device "$DEVICE" $EVAL_ARGS >> "$d/train.log" 2>&1 ) &
done
( sleep 150; nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total --format=csv >> "$DEST/pilots.log" 2>&1 ) &
wait
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv >> "$DEST/pilots.log" 2>&1
python3 - "$WORKDIR" "$DEST" $PRESETS <<'PY'
import json, sys, subprocess
from pathlib import Path
work, dest, presets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
summary, grids = {}, []
with open(dest / "pilots.log", "a") as log:
    for p in presets:
        d = work / p
        lines = (d / "train.log").read_text().splitlines() if (d / "train.log").is_file() else []
        keep = [l for l in lines if "unet step" not in l or l.split("/")[0].endswith("00")]
        log.write(f"==== {p}\n" + "\n".join(keep[-60:]) + "\n")
        evals = sorted(d.glob("eval_*.json"))
        summary[p] = json.loads(evals[-1].read_text()) if evals else None
        pngs = sorted(d.glob("t2i_*.png"))
        if pngs:
            grids.append((p, pngs[-1]))
(dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
if grids:
    from PIL import Image
    ims = [Image.open(g).convert("RGB") for _, g in grids]
    ims = [im.resize((im.width // 4, im.height // 4)) for im in ims]
    W = max(im.width for im in ims); H = sum(im.height for im in ims)
    sheet = Image.new("RGB", (W, H), "white"); y = 0
    for im in ims:
        sheet.paste(im, (0, y)); y += im.height
    sheet.save(dest / "t2i.png")
done = {p: r for p, r in summary.items() if r}
if done:
    best = max(done, key=lambda p: (done[p]["t2i_every_object_right"], done[p]["t2i_objects_right"]))
    (dest / "best.txt").write_text(best + "\n")
    subprocess.run(["split", "-b", "15M", "-d", str(work / best / "toy_unet.safetensors"),
                    str(dest / "toy_unet.safetensors.part-")], check=True)
print(json.dumps({p: (r and {k: r[k] for k in ("steps", "loss", "t2i_every_object_right", "t2i_objects_right",
                                                   "noun_iou_ge_0.5", "binding_gap")}) for p, r in summary.items()}, indent=1))
PY
