#!/usr/bin/env bash
# One device call that does the GPU work owed by several issues side by side on one GPU (16 cores),
# within a lent machine's 10 minutes; PARTS picks them (default "lane dreambooth cost"):
#   pilots: the toy flow DiT's size pilots (issues 26/27: workshop/toyworld/gpu_flow_pilots.sh, MIN/DMIN
#      minutes); best in a call of their own (PARTS=pilots PRESETS=h192-d3s6 THREADS=8): processes
#      share a GPU by turns;
#   cost: the real-size cost tables (workshop/benchmarks/gpu_cost.py, SD1.5 then SDXL; COST_FAMILIES), run after
#      the other parts have finished, alone on the GPU: run beside the lane and DreamBooth (an H100 call) its
#      stock step took 66 ms instead of 25, and the editors' ratios meant nothing;
#   lane: every shipped workflow (the training ones last) on the GPU with the host's defaults (tests/gpu/gpu_lane_worker.py, no CPU
#      reference here: the pictures come back and the reference runs on the CPU at home:
#      python tests/gpu/gpu_lane_worker.py --device cpu --out DIR, then workshop/gpu_lane_compare.py);
#   flowcost: the flow editors' cost at real size (workshop/benchmarks/gpu_flow_cost.py: Flux.1 dev at 1024 and
#      512 px, then SD3 medium at 1024 px; FLOWCOST_ARGS), after the other parts, alone on the GPU, as cost is;
#   nulltext: Null-Text Optimize's time at SD1.5 512 px, eager and from CUDA graphs (issue 77:
#      workshop/benchmarks/null_text_time.py; NULLTEXT_ARGS), after the other parts, alone on the GPU (about 3 minutes);
#   dreambooth: DreamBooth Fine-Tune with the text encoder in the host's GPU precisions (issue 28), world 1;
#   lse: tests/gpu/test_attention_lse_gpu.py beside the other parts (a correctness test, not a timing);
#   lsek: Joint Attention Inject's attention call at SD3's and Flux's sizes, piece by piece and kernel by kernel
#      (workshop/benchmarks/lse_kernels.py; LSEK_ARGS), after the other parts, alone on the GPU (about a minute);
#   world2: issue 29's toy world 2 model (L64-a48) trained longer at batch 128 from W2_FROM's weights
#      (default models/toyworld2-candidate; lr W2_LR, warm-up 100, cosine), last and alone on the GPU, for what
#      is left of DEADLINE_S less W2_TAIL_S; its EMA weights (float16, 12.9 MB) and log come back;
#   teachers: the toy flow DiT trained again on the bound T5, teacher and student (issues 26/27:
#      workshop/toyworld/gpu_flow_teachers.sh; RUNS, LONG_MIN, DMIN; RUNS=resume RESUME_DIR=.carry: one teacher
#      across calls, its compact checkpoint carried in and brought back), its models kept.
# On the GPU machine, from the project root:  bash .gpu/run.sh bash workshop/gpu_one_call.sh
# What it keeps (logs, JSON, the lane's pictures capped at LANE_MB, the pilots' summary and best model) is
# written under $KEEP and, at the end, packed into $OUT (default ./gpu-call-out) as one tar split into
# 14 MB parts: a device call brings back only a few files, each under about 15 MB. At home:
#   cat FILES_AT/results.tar.part-* | tar xf - -C DIR
# A CPU smoke test of the script itself:
#   PARTS="lane dreambooth cost pilots" DEVICE=cpu BATCH=2 MIN=0.1 DMIN=0.1 PRESETS=h128-d2s4 LANE_ONLY="Start here - Invert and edit" \
#   DB_ARGS="--steps 4 --seeds 2 --class-images 2" COST_FAMILIES=sd15 COST_ARGS="--tiny --steps 2" bash workshop/gpu_one_call.sh
set -u
DEST=${OUT:-gpu-call-out}; O=${KEEP:-$(mktemp -d /tmp/gpu-call-keep-XXXX)}; mkdir -p "$DEST" "$O"   # KEEP: fresh per call
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
DEV=${DEVICE:-cuda}
LANE_DIR=${LANE_DIR:-/tmp/gpu-lane}
(nvidia-smi || true) > "$O/nvidia-smi.txt" 2>&1
date +%s > "$O/started"

PARTS=" ${PARTS:-lane dreambooth cost} "   # any of: lane dreambooth cost flowcost nulltext pilots teachers lse lsek world2
has() { [[ "$PARTS" == *" $1 "* ]]; }
PIDS=()

if has pilots; then
  ( OUT=$O/pilots MIN=${MIN:-4.5} DMIN=${DMIN:-1.3} DEVICE=$DEV bash workshop/toyworld/gpu_flow_pilots.sh \
      > "$O/pilots.out" 2>&1 ) &
  PIDS+=($!)
fi

if has teachers; then
  ( OUT=$O/teachers DEVICE=$DEV bash workshop/toyworld/gpu_flow_teachers.sh > "$O/teachers.out" 2>&1 ) &
  PIDS+=($!)
fi

if has lse; then   # the fused attention's log-sum-exp and Joint Attention Inject's edit on CUDA (the GPU lane's test)
  ( timeout "${LSE_S:-240}" python3 -m pytest -q -p no:cacheprovider tests/gpu/test_attention_lse_gpu.py \
      > "$O/lse.log" 2>&1 ) &
  PIDS+=($!)
fi

if has dreambooth; then
  GPU_FLAG=(--gpu); [[ "$DEV" == cpu ]] && GPU_FLAG=()
  ( timeout "${DB_S:-330}" python3 -m workshop.benchmarks.dreambooth_toy "${GPU_FLAG[@]}" --full --text-encoder \
      --prior-only --prior-weight 3 --lr 2e-5 ${DB_ARGS:---steps 1600 --class-images 200 --seeds 40} \
      > "$O/dreambooth.log" 2>&1 ) &
  PIDS+=($!)
fi

if has lane; then
  ONLY=()
  if [[ -n "${LANE_ONLY:-}" ]]; then   # case ids separated by ';' (ids hold spaces: "Flux - Stable Flow")
    IFS=';' read -ra IDS <<< "$LANE_ONLY"; ONLY=(--only "${IDS[@]}")
  fi
  timeout "${LANE_S:-330}" python3 tests/gpu/gpu_lane_worker.py --device "$DEV" --out "$LANE_DIR" --threads 4 \
      "${ONLY[@]}" > "$O/lane.log" 2>&1
  python3 - "$LANE_DIR" "$O/lane" "${LANE_MB:-30}" <<'EOF'
import shutil, sys
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
    folder = dest / "images" / png.parent.name   # where results.json says (images/N/...): gpu_lane_compare reads it
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, folder / png.name); used += size
EOF
fi
for pid in "${PIDS[@]}"; do wait "$pid"; done
if has lsek; then   # Joint Attention Inject's attention call at SD3's and Flux's sizes, kernel by kernel (alone on the GPU)
  timeout "${LSEK_S:-150}" python3 -m workshop.benchmarks.lse_kernels --device "$DEV" --json "$O/lse_kernels.json" \
      ${LSEK_ARGS:-} > "$O/lse_kernels.log" 2>&1
fi
if has cost; then   # the real-size cost tables (tests/gpu/test_gpu_cost.py's benchmark), SD1.5 then SDXL
  for family in ${COST_FAMILIES:-sd15 sdxl}; do
      timeout "${COST_S:-120}" python3 -m workshop.benchmarks.gpu_cost --device "$DEV" --families "$family" \
          --json "$O/gpu_cost_$family.json" ${COST_ARGS:-} > "$O/gpu_cost_$family.log" 2>&1
    done
fi

# DEADLINE_S: seconds from the start by which the results must be packed (the device call's limit, less a margin);
# the cost parts after the others get what is left of it, at most their own timeouts
left() { local rest=$(( ${DEADLINE_S:-100000} - ($(date +%s) - $(cat "$O/started")) - 15 )); (( rest < $1 )) && echo $(( rest > 1 ? rest : 1 )) || echo "$1"; }
if has flowcost; then   # Flux.1 dev (1024 then 512 px), then SD3 medium (1024 px): each JSON rewritten case by case
  # FLOWCOST_ONLY / FLOWCOST_SD3_ONLY: one family's --only (a label's text, spaces allowed); FLOWCOST_SD3_S=0: no SD3
  ONLY_FLUX=(); [[ -n "${FLOWCOST_ONLY:-}" ]] && ONLY_FLUX=(--only "$FLOWCOST_ONLY")
  ONLY_SD3=(); [[ -n "${FLOWCOST_SD3_ONLY:-}" ]] && ONLY_SD3=(--only "$FLOWCOST_SD3_ONLY")
  timeout "$(left "${FLOWCOST_S:-330}")" python3 -m workshop.benchmarks.gpu_flow_cost --device "$DEV" --families flux-dev \
      --json "$O/gpu_flow_cost_flux.json" "${ONLY_FLUX[@]}" ${FLOWCOST_ARGS:-} > "$O/gpu_flow_cost_flux.log" 2>&1
  if [[ "${FLOWCOST_SD3_S:-120}" != 0 ]]; then
    timeout "$(left "${FLOWCOST_SD3_S:-120}")" python3 -m workshop.benchmarks.gpu_flow_cost --device "$DEV" --families sd3 \
        --sides 1024 --json "$O/gpu_flow_cost_sd3.json" "${ONLY_SD3[@]}" ${FLOWCOST_ARGS:-} > "$O/gpu_flow_cost_sd3.log" 2>&1
  fi
fi
if has nulltext; then   # issue 77: the paper's recipe eager and graphed, the fast start graphed (alone on the GPU)
  timeout "$(left "${NULLTEXT_S:-360}")" python3 -m workshop.benchmarks.null_text_time --device "$DEV" \
      --json "$O/null_text_time.json" ${NULLTEXT_ARGS:-} > "$O/null_text_time.log" 2>&1
fi
if has world2; then   # issue 29: the L64-a48 base trained longer (toyworld/SCENES-NOTES.md, "Issue 29"), last, alone
  W=${W2_WORK:-/tmp/world2}; mkdir -p "$W" "$O/world2"; cp models/toyworld2/toy_vae.safetensors "$W/"
  W2_MIN=$(python3 -c "print(round(max(0.3, ($(left 100000) - ${W2_TAIL_S:-75}) / 60), 2))")
  echo "world2: --fit-minutes $W2_MIN" > "$O/world2.log"
  timeout "$(left 100000)" python3 -m workshop.toyworld.train_scenes --stage unet --out "$W" --preset L64-a48 \
      --text-encoder bound --device "$DEV" --threads "${W2_THREADS:-8}" --unet-batch "${W2_BATCH:-128}" --lowres-steps 0 \
      --unet-steps "${W2_STEPS:-4800}" --warmup 100 --unet-lr "${W2_LR:-3e-4}" --init-from "${W2_FROM:-models/toyworld2-candidate}" \
      --fit-minutes "$W2_MIN" --max-minutes "$(python3 -c "print($W2_MIN + 0.4)")" --ckpt-minutes 100 >> "$O/world2.log" 2>&1
  cp "$W/toy_unet.safetensors" "$O/world2/" 2>> "$O/world2.log"
fi

echo "done in $(( $(date +%s) - $(cat "$O/started") )) s" | tee "$O/done"
tar cf - -C "$O" . | split -b 14M -d - "$DEST/results.tar.part-"
