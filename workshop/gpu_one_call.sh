#!/usr/bin/env bash
# One device call that does the GPU work owed by several issues side by side on one GPU (16 cores),
# within a lent machine's 10 minutes:
#   A. the toy flow DiT's size pilots (issues 26/27: workshop/toyworld/gpu_flow_pilots.sh, MIN/DMIN minutes);
#   B. every shipped workflow on the GPU with the host's defaults (tests/gpu/gpu_lane_worker.py, no CPU
#      reference here: the pictures come back and the reference runs on the CPU at home:
#      python tests/gpu/gpu_lane_worker.py --device cpu --out DIR, then workshop/gpu_lane_compare.py);
#   C. DreamBooth Fine-Tune with the text encoder in the host's GPU precisions (issue 28), toy world 1.
# On the GPU machine, from the project root:  bash .gpu/run.sh bash workshop/gpu_one_call.sh
# What it keeps (logs, JSON, the lane's pictures capped at LANE_MB, the pilots' summary and best model) is
# written under $KEEP and, at the end, packed into $OUT (default ./gpu-call-out) as one tar split into
# 14 MB parts: a device call brings back only a few files, each under about 15 MB. At home:
#   cat FILES_AT/results.tar.part-* | tar xf - -C DIR
# A CPU smoke test of the script itself:
#   DEVICE=cpu BATCH=2 MIN=0.1 DMIN=0.1 LANE_ONLY=invert_and_edit DB_ARGS="--steps 4 --seeds 2 --class-images 2" \
#   bash workshop/gpu_one_call.sh
set -u
DEST=${OUT:-gpu-call-out}; O=${KEEP:-/tmp/gpu-call-keep}; mkdir -p "$DEST" "$O"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
DEV=${DEVICE:-cuda}
LANE_DIR=${LANE_DIR:-/tmp/gpu-lane}
(nvidia-smi || true) > "$O/nvidia-smi.txt" 2>&1
date +%s > "$O/started"

( OUT=$O/pilots MIN=${MIN:-4.5} DMIN=${DMIN:-1.3} DEVICE=$DEV bash workshop/toyworld/gpu_flow_pilots.sh \
    > "$O/pilots.out" 2>&1 ) &
PILOTS=$!

ONLY=()
[[ -n "${LANE_ONLY:-}" ]] && ONLY=(--only $LANE_ONLY)
( timeout "${LANE_S:-450}" python3 tests/gpu/gpu_lane_worker.py --device "$DEV" --out "$LANE_DIR" --threads 4 \
    "${ONLY[@]}" > "$O/lane.log" 2>&1 ) &
LANE=$!

GPU_FLAG=(--gpu); [[ "$DEV" == cpu ]] && GPU_FLAG=()
( timeout "${DB_S:-450}" python3 -m workshop.benchmarks.dreambooth_toy "${GPU_FLAG[@]}" --full --text-encoder \
    --prior-only --prior-weight 3 --lr 2e-5 ${DB_ARGS:---steps 1600 --class-images 200 --seeds 40} \
    > "$O/dreambooth.log" 2>&1 ) &
DREAMBOOTH=$!

wait $LANE
python3 - "$LANE_DIR" "$O/lane" "${LANE_MB:-30}" <<'EOF'
import json, shutil, sys
from pathlib import Path
src, dest, cap = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) * 2**20
dest.mkdir(parents=True, exist_ok=True)
if (src / "results.json").is_file():
    shutil.copyfile(src / "results.json", dest / "results.json")
used = 0
for png in sorted((src / "images").glob("*/*.png"), key=lambda p: (int(p.parent.name), p.name)):
    size = png.stat().st_size
    if used + size > cap:
        print("lane pictures capped at", png.relative_to(src)); break
    (dest / png.parent.name).mkdir(exist_ok=True)
    shutil.copyfile(png, dest / png.parent.name / png.name); used += size
EOF
wait $DREAMBOOTH
wait $PILOTS
echo "done in $(( $(date +%s) - $(cat "$O/started") )) s" | tee "$O/done"
tar cf - -C "$O" . | split -b 14M -d - "$DEST/results.tar.part-"
