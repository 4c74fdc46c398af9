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
python3 -m workshop.toyworld.pilot_summary scenes "$WORKDIR" "$DEST" $PRESETS
