#!/usr/bin/env bash
# Issues 26/27: the toy flow DiT trained again on the bound T5 (invertedit/demo/t5_binding.py; FLOW_TEXT
# binds it, so train_flow's contexts are bound), teacher and student both, on one GPU, side by side:
#   shipped: the shipped model's own recipe (models/toyworld-flow/config.json "training": h128-d2s4,
#            4,000 steps of batch 32, 3,500 of them at 128 px with every third at 256, shift 8; the student
#            600 steps with the attention loss), only the text encoder differs: the clean comparison;
#   long:    the same at LONG_STEPS steps (lowres for all but the last eighth) with the cosine's horizon
#            fitted to LONG_MIN minutes, and its student DMIN minutes.
#   big:     LONG_STEPS steps of batch BIG_BATCH (128) at 256 px throughout, the horizon fitted to LONG_MIN
#            minutes (the shipped "long" run used batch 32 at 0.04 s a step on an H100: the GPU mostly idle,
#            so a wider batch sees about four times the scenes in the same minutes), its student DMIN minutes.
#   resume:  one teacher trained across calls (and CPU sessions): RESUME_DIR (a carried folder) holds its
#            dit_compact.pt (train_flow's compact checkpoint, 9 MB: the working tree leaves about 12 MB for
#            what is carried; the full one, 37 MB, does not fit); RESUME_STEPS (40000) steps of batch 32 at
#            128 px throughout, noise levels shifted by 3 (the CPU's longer-schedule recipe, docs/toyworld.md),
#            a fixed cosine, so that each call goes on where the last stopped; the call's training stops a
#            minute before CAP_MIN and its dit_compact.pt comes back, to be carried into the next; once the
#            schedule is done the student is distilled and both are evaluated as the others.
#   graph:   the whole long schedule in one call, each step taken out of the CPU's hands (train_flow --cuda-graph:
#            inputs made 256 steps at a time on the device, the forward and backward replayed from a CUDA graph):
#            batch GRAPH_BATCH (32) at 256 px throughout, noise levels shifted by GRAPH_SHIFT (6: the CPU's long
#            recipe's 3 at 128 px, scaled with the side), lr GRAPH_LR (5e-4), the cosine's horizon fitted to LONG_MIN
#            minutes (at most GRAPH_STEPS); the student DMIN minutes, graphed the same way (its teacher's guided
#            velocity and the attention loss inside the graph).
# PRESET: the DiT's size for every run (train_flow.PRESETS; default h128-d2s4, the shipped model's).
# DISTIL_ARGS: more train_flow options for every run's distillation (e.g. "--guidance-one 0.3").
# DISTIL_VARIANTS: distillations of one teacher side by side, their options separated by ";" (e.g.
# "--guidance-one 0.1;--guidance-one 0.2 --distil-lr 1e-4"), each after DISTIL_ARGS, in <run>/v<i> (args.txt says
# which), each evaluated as below; they share the GPU and the distillation's minutes (DMIN) each.
# Each run then evaluates its student (40 held-out captions, as the pilots). The models come back as
# toy_dit.safetensors + config.json (drop into models/toyworld-flow/ and run the flow benchmark at home)
# and the teacher's EMA weights (toy_dit_ema.pt: for students distilled at home).
# Then flow_recon (RECON_SCENES, 50): teacher and student through inversion and back, and where the student's
# guidance 1 leaves the teacher (recon.json; the 2026-11-28 student lost a third of the scenes its teacher kept).
# LEVELS=1: then also the teacher's text to image and both models' flow_levels (LEVELS_RES px, LEVELS_SCENES
# held-out scenes, their one-step grids as levels_<teacher|student>.png).
# On the GPU machine, from the project root:  bash .gpu/run.sh bash workshop/toyworld/gpu_flow_teachers.sh
# A CPU smoke test: DEVICE=cpu SMOKE=1 OUT=/tmp/ft-smoke bash workshop/toyworld/gpu_flow_teachers.sh
set -u
# WORKDIR: a fresh folder per call unless TEACHERS_WORK names one (a stage whose weights are there is skipped,
# so a warm machine's second call would otherwise redo nothing). CAP_MIN: minutes per run's training, at most
# (set-up included); EVAL_MIN: minutes for its evaluations after it.
DEST=${OUT:-flow-teachers-out}; WORKDIR=${TEACHERS_WORK:-$(mktemp -d /tmp/flow-teachers-XXXX)}
DEVICE=${DEVICE:-cuda}; RUNS=${RUNS:-"shipped long"}
PRESET=${PRESET:-h128-d2s4}   # train_flow.PRESETS: the shipped size; h128-d4s8 twice as deep (Stable Flow's vital blocks)
LONG_STEPS=${LONG_STEPS:-16000}; LONG_MIN=${LONG_MIN:-5}; DMIN=${DMIN:-1.5}; CAP=${CAP_MIN:-8}
mkdir -p "$DEST" "$WORKDIR"
for run in $RUNS; do
  d=$WORKDIR/$run; mkdir -p "$d"; cp models/toyworld-flow/toy_vae.safetensors "$d/"
  A="--out $d --preset $PRESET --threads ${THREADS:-2} --device $DEVICE --noise-shift 8"
  if [[ $run == shipped ]]; then
    T="--steps 4000 --batch 32 --lowres 128 --lowres-steps 3500 --highres-every 3"; D="--distil-steps 600"
  elif [[ $run == graph ]]; then
    T="--steps ${GRAPH_STEPS:-200000} --batch ${GRAPH_BATCH:-32} --lr ${GRAPH_LR:-5e-4} --lowres-steps 0 --noise-shift ${GRAPH_SHIFT:-6} --fit-minutes $LONG_MIN --cuda-graph --ckpt-minutes 100"
    D="--distil-steps 3000 --fit-minutes $DMIN"
  elif [[ $run == big ]]; then   # the GPU's width: batch BIG_BATCH at 256 px throughout, horizon fitted to LONG_MIN
    T="--steps $LONG_STEPS --batch ${BIG_BATCH:-128} --lr ${BIG_LR:-5e-4} --lowres-steps 0 --fit-minutes $LONG_MIN"
    D="--distil-steps 2000 --batch ${BIG_BATCH:-128} --fit-minutes $DMIN"
  else
    T="--steps $LONG_STEPS --batch 32 --lowres 128 --lowres-steps $(( LONG_STEPS * 7 / 8 )) --highres-every 3 --fit-minutes $LONG_MIN"
    D="--distil-steps 2000 --fit-minutes $DMIN"
  fi
  M=$CAP
  if [[ $run == resume ]]; then
    R=${RESUME_DIR:?RUNS=resume needs RESUME_DIR: the carried folder with the teacher dit_compact.pt}
    cp "$R"/dit_compact.pt "$R"/dit_ckpt.pt "$R"/text.pt "$d/" 2>/dev/null || true
    S=${RESUME_STEPS:-40000}
    T="--steps $S --batch 32 --lowres 128 --lowres-steps $S --highres-every 0 --noise-shift 3 --ckpt-minutes 2"
    D="--distil-steps 2000 --fit-minutes $DMIN"
    # --max-minutes counts the run's minutes across resumes: this call's share is what is spent plus CAP - 1
    M=$(python3 -c "import os, sys, torch; p = sys.argv[1]; spent = torch.load(p, weights_only=False, map_location='cpu')['seconds'] / 60 if os.path.isfile(p) else 0.0; print(f'{spent + float(sys.argv[2]) - 1:.2f}')" "$d/dit_compact.pt" "$CAP")
  fi
  [[ -n "${SMOKE:-}" ]] && { T="--steps 4 --batch 2 --lowres 128 --lowres-steps 2"; D="--distil-steps 2 --batch 2"; }
  [[ -n "${SMOKE:-}" && $run == graph ]] && T="--steps 6 --batch 2 --lowres-steps 0 --cuda-graph --graph-chunk 4"
  E="--eval-captions ${EVAL_CAPTIONS:-40}"; [[ -n "${SMOKE:-}" ]] && { E="--eval-captions 5 --eval-steps 2"; export RECON_SCENES=${RECON_SCENES:-2}; }
  keep() {   # $1 (a run's or a variant's folder) into $2: brought back as soon as it is there (a call cut short keeps the weights)
    mkdir -p "$2"
    for f in train.log config.json toy_dit.safetensors sample.png args.txt $([[ $1 == "$d" ]] && echo toy_dit_ema.pt) \
             $([[ $run == resume ]] && echo dit_compact.pt); do
      [[ -f "$1/$f" ]] && cp "$1/$f" "$2/"
    done
    cp "$1"/*.png "$1"/*.json "$2/" 2>/dev/null || true
  }
  # student $folder $dest "$distil args" $seconds: distil (within $seconds), finish, keep; then the evaluations
  student() {
    local v=$1 dest=$2 extra=$3 left=$4 Av="${A/--out $d/--out $1}"
    echo "$extra" > "$v/args.txt"
    timeout "$left" bash -c "
      python3 -m workshop.toyworld.train_flow --stage distil $Av $T $D $extra &&
      python3 -m workshop.toyworld.train_flow --stage finish $Av $T $extra" >> "$v/train.log" 2>&1
    keep "$v" "$dest"
    # the evaluations after the cap, under their own (EVAL_MIN): a cap that counted them cut them off (2026-11-27)
    [[ -f $v/toy_dit.safetensors ]] && timeout "$(awk "BEGIN { print int(${EVAL_MIN:-2} * 60) }")" bash -c "
      python3 -m workshop.toyworld.train_flow --stage eval --eval-student --eval-shift host $Av $T $E
      python3 -m workshop.toyworld.flow_recon --out $v --preset $PRESET --scenes \${RECON_SCENES:-50} \
          --device $DEVICE --threads \${THREADS:-2} --json $v/recon.json
      if [[ -n \"\${LEVELS:-}\" ]]; then   # the teacher's text to image, then both models' flow_levels
        python3 -m workshop.toyworld.train_flow --stage eval --eval-shift host $Av $T $E
        for who in teacher student; do
          flag=; [[ \$who == student ]] && flag=--student
          python3 -m workshop.toyworld.flow_levels --out $v --preset $PRESET --res \${LEVELS_RES:-256} \
              --scenes \${LEVELS_SCENES:-60} --device $DEVICE --threads \${THREADS:-2} \$flag \
              --grid $v/levels_\$who.png > $v/levels_\$who.json
        done
      fi" >> "$v/train.log" 2>&1
    keep "$v" "$dest"
  }
  ( start=$SECONDS
    timeout "$(awk "BEGIN { print int($CAP * 60) }")" \
      python3 -m workshop.toyworld.train_flow --stage dit $A $T --max-minutes $M > "$d/train.log" 2>&1
    keep "$d" "$DEST/$run"
    [[ -f $d/toy_dit_ema.pt ]] || exit 0   # a teacher stopped by the cap (resume) goes on next call
    left=$(( $(awk "BEGIN { print int($CAP * 60) }") - (SECONDS - start) ))
    (( left > 0 )) || left=1   # the cap spent (timeout 0 would be no limit at all)
    if [[ -z "${DISTIL_VARIANTS:-}" ]]; then
      student "$d" "$DEST/$run" "${DISTIL_ARGS:-}" "$left"
    else   # one teacher, its students side by side (each in its own folder: the teacher's files linked in)
      IFS=';' read -ra variants <<< "$DISTIL_VARIANTS"
      for i in "${!variants[@]}"; do
        v=$d/v$i; mkdir -p "$v"
        for f in toy_vae.safetensors toy_dit_ema.pt text.pt words.pt; do [[ -f $d/$f ]] && ln -f "$d/$f" "$v/$f"; done
        student "$v" "$DEST/$run/v$i" "${DISTIL_ARGS:-} ${variants[i]}" "$left" &
      done
      wait
    fi ) &
done
wait
