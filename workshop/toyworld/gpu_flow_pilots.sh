#!/usr/bin/env bash
# Issues 26/27: the toy flow DiT's sizes piloted side by side on one GPU (docs/toyworld.md, "The flow
# world"): every preset's CFG teacher trained from its seeded start (batch $BATCH at 256 px, AdamW 5e-4,
# warm-up 200, cosine to a tenth, EMA 0.999) for the same wall time ($MIN minutes: --fit-minutes sets
# each cosine's horizon to what fits), then guidance-distilled with the attention loss ($DMIN minutes),
# then the quick text-to-image evaluation of the student (40 held-out captions, Euler 20, guidance 4,
# at the host's ModelSamplingFlux shift for the image's size, as the Flux workflows sample).
# SHIFT: the training noise levels' shift at 256 px (--noise-shift; 8: the shipped model's, 1: none;
# the CPU pilots of 2026-11-26 at 128 px found the shift keeps the layout: docs/toyworld.md).
# On the GPU machine, from the project root:  MIN=5 DMIN=1.5 bash .gpu/run.sh bash workshop/toyworld/gpu_flow_pilots.sh
# Writes to $OUT (or ./flow-pilots-out): summary.json, pilots.log, t2i.png (each pilot's first 20 samples),
# and the best pilot's finished model (toy_dit.safetensors, config.json: drop into models/toyworld-flow/).
set -u
MIN=${MIN:-5}; DMIN=${DMIN:-1.5}; SHIFT=${SHIFT:-8}
PRESETS=${PRESETS:-"h128-d2s4 h128-d4s8 h192-d3s6"}
DEST=${OUT:-flow-pilots-out}
WORKDIR=${PILOTS_WORK:-/tmp/flow-pilots}
DEVICE=${DEVICE:-cuda}; BATCH=${BATCH:-128}   # (a CPU smoke test: DEVICE=cpu BATCH=2 MIN=0.1 DMIN=0.1)
# THREADS: torch CPU threads per pilot (2). Pilots side by side share the GPU by turns (no MPS): one preset
# alone: PRESETS=h192-d3s6 THREADS=8 (the first GPU run: docs/toyworld.md).
mkdir -p "$DEST" "$WORKDIR"
for p in $PRESETS; do
  d=$WORKDIR/$p; mkdir -p "$d"; cp models/toyworld-flow/toy_vae.safetensors "$d/"
  A="--out $d --preset $p --threads ${THREADS:-2} --device $DEVICE --batch $BATCH --noise-shift $SHIFT"
  ( python3 -m workshop.toyworld.train_flow --stage dit $A --steps 100000 --lowres-steps 0 --warmup 200 \
        --fit-minutes "$MIN" --ckpt-minutes 100 > "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage distil $A --distil-steps 100000 --lowres-steps 0 \
        --fit-minutes "$DMIN" --ckpt-minutes 100 >> "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage finish $A >> "$d/train.log" 2>&1
    python3 -m workshop.toyworld.train_flow --stage eval --eval-student --eval-shift host $A >> "$d/train.log" 2>&1 ) &
done
( sleep 120; nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total --format=csv >> "$DEST/pilots.log" 2>&1 ) &
wait
python3 -m workshop.toyworld.pilot_summary flow "$WORKDIR" "$DEST" $PRESETS
