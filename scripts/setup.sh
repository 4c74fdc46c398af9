#!/usr/bin/env bash
# Set up a machine for ComfyUI-InvertEdit, then run the main job (an edit workflow, headless,
# on the pack's built-in Toy World Model). Idempotent: a second run only checks (seconds).
#
#   bash scripts/setup.sh            # set up, then run "example_workflows/Start here - Invert and edit.json" into out/
#   bash scripts/setup.sh --no-run   # only set up
#
# Steps:
#  1. torch: `pip install torch==2.13.0` only if torch is not importable (an existing torch,
#     CPU or CUDA, is kept).
#  2. ComfyUI: found like the pack finds it (COMFYUI_PATH; the ComfyUI/ this pack sits in,
#     as custom_nodes/<pack>; ~/comfy/ComfyUI). If none: extract the ComfyUI snapshot at
#     $COMFYUI_MIRROR (default /work/.mirror/Comfy-Org+ComfyUI/repo, a bare git dir) with
#     extract-git-tree, else clone release v0.3.64 from GitHub, into COMFYUI_PATH or
#     ~/comfy/ComfyUI. Never into this repository. ComfyUI is not a Python package, so the host
#     found is registered with the interpreter: a file invertedit-comfyui.pth in its
#     site-packages names the ComfyUI folder (then `import comfy` works for the tests and the
#     workshop tools, and no module changes sys.path).
#  3. ComfyUI's requirements.txt without torch, torchvision, torchaudio, kornia, spandrel
#     (asking for those can replace a CPU torch with a multi-GB CUDA one; ComfyUI runs without
#     them, minus a few optional nodes), the pack's requirements.txt, and the test tools
#     (pytest, diffusers, playwright, gguf). Only what is missing or too old is installed; torch
#     stays pinned. Without spandrel the frontend is 1.28.8 rather than the host's pin (1.27.10 drops Load
#     Checkpoint from a workflow when a stock loader node is missing: the checkpoint templates would not queue).
#  4. Chromium, for the browser tests (tests/browser drive it with Playwright): only if no
#     chromium is on PATH, `apt-get install -y chromium` (Debian; with sudo when not root).
#     Playwright's own browser download (`playwright install`) is never used. Where Chromium
#     cannot be installed the browser tests are skipped with one loud line; nothing else needs it.
#
# Environment: PYTHON (the interpreter; default: python, else python3), COMFYUI_PATH, COMFYUI_MIRROR.
set -euo pipefail

COMFYUI_RELEASE=v0.3.64
COMFYUI_GIT=https://github.com/comfyanonymous/ComfyUI
TORCH_PIN=torch==2.13.0
FRONTEND_WITHOUT_SPANDREL="comfyui-frontend-package==1.28.8"   # step 3: the frontend where spandrel is left out
TEST_DEPS=("pytest>=8" "pytest-xdist>=3"   # the suite's two workers (tests/pytest.ini)
           "gguf>=0.13.0"                               # ComfyUI-GGUF's own requirement (tests/host/test_gguf_lane.py)
           "diffusers>=0.30" "matplotlib"   # matplotlib: imported by the PnPInversion reference code
           "playwright"                                 # tests/browser (with the system Chromium, step 4)
           "accelerate"                                 # imported by diffusers' community Imagic pipeline (parity test)
           "peft"                                       # diffusers' DreamBooth LoRA script's LoRA (parity test)
           "torchmetrics")                              # PnPInversion's PIE-Bench metrics (workshop/piebench parity)
MAIN_WORKFLOW="example_workflows/Start here - Invert and edit.json"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

run_job=1
for arg in "$@"; do
  case "$arg" in
    --no-run) run_job=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[setup] $*"; }
fail() { echo "[setup] ERROR: $*" >&2; exit 1; }

# --- Python -------------------------------------------------------------------------------
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for candidate in python python3; do  # `python` first: the README's commands use it
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      PY=$candidate; break
    fi
  done
  PY=${PY:-python3}
fi
[[ -n "$PY" ]] || fail "no python3 found (set PYTHON=/path/to/python)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "$("$PY" -V 2>&1) is too old: ComfyUI and this pack need Python 3.10 or newer"
"$PY" -m pip --version >/dev/null 2>&1 || fail "pip is not available for $PY (install python3-pip)"
pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

# --- 1. torch -----------------------------------------------------------------------------
if "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
  say "torch: present"
else
  say "torch: missing, installing $TORCH_PIN"
  pip_install "$TORCH_PIN"
fi

# --- 2. ComfyUI ---------------------------------------------------------------------------
find_host() {
  (cd "$REPO" && "$PY" -c 'from workshop.headless.host import find_host; print(find_host() or "")')
}
HOST=$(find_host)
if [[ -z "$HOST" ]]; then
  TARGET=${COMFYUI_PATH:-$HOME/comfy/ComfyUI}
  TARGET=${TARGET/#\~/$HOME}
  case "$("$PY" -c 'import os, sys; print(os.path.realpath(sys.argv[1]))' "$TARGET")/" in
    "$(cd "$REPO" && pwd -P)"/*) fail "COMFYUI_PATH ($TARGET) is inside this repository; ComfyUI must live outside it" ;;
  esac
  if [[ -e "$TARGET" && -n "$(ls -A "$TARGET" 2>/dev/null)" ]]; then
    fail "$TARGET exists but is not a ComfyUI checkout (no main.py, nodes.py and comfy/); move it away or point COMFYUI_PATH at your ComfyUI"
  fi
  MIRROR=${COMFYUI_MIRROR:-/work/.mirror/Comfy-Org+ComfyUI/repo}
  EXTRACT=""
  for tool in /work/shared/tools/extract-git-tree "$REPO/../shared/tools/extract-git-tree"; do
    if [[ -f "$tool" ]]; then EXTRACT=$tool; break; fi
  done
  if [[ -d "$MIRROR" && -n "$EXTRACT" ]] && git --git-dir="$MIRROR" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    say "ComfyUI: not found; extracting the snapshot at $MIRROR into $TARGET"
    bash "$EXTRACT" "$MIRROR" "$TARGET"
  elif GIT_TERMINAL_PROMPT=0 timeout 30 git ls-remote --exit-code "$COMFYUI_GIT" "refs/tags/$COMFYUI_RELEASE" >/dev/null 2>&1; then
    say "ComfyUI: not found; cloning $COMFYUI_RELEASE into $TARGET"
    mkdir -p "$(dirname "$TARGET")"
    GIT_TERMINAL_PROMPT=0 git clone --quiet --depth 1 --branch "$COMFYUI_RELEASE" "$COMFYUI_GIT" "$TARGET"
  else
    fail "ComfyUI not found ($(cd "$REPO" && "$PY" -c 'from workshop.headless.host import host_missing_reason; print(host_missing_reason())' )), no snapshot at $MIRROR, and $COMFYUI_GIT cannot be reached. Install ComfyUI $COMFYUI_RELEASE yourself and set COMFYUI_PATH to it."
  fi
  HOST=$(find_host)
  [[ -n "$HOST" ]] || fail "ComfyUI was put in $TARGET but is not found there (is COMFYUI_PATH pointing elsewhere?)"
fi
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$HOST/comfyui_version.py" 2>/dev/null || true)
say "ComfyUI: $HOST (version ${version:-unknown})"
if [[ -n "$version" && "v$version" != "$COMFYUI_RELEASE" ]]; then
  say "note: this pack is tested with ComfyUI $COMFYUI_RELEASE"
fi
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PTH="$SITE/invertedit-comfyui.pth"
if [[ "$(cat "$PTH" 2>/dev/null)" != "$HOST" ]]; then
  printf '%s\n' "$HOST" > "$PTH" || fail "could not write $PTH (register ComfyUI with this Python by hand: put its folder's path in a .pth file in site-packages)"
  say "ComfyUI registered with $PY ($PTH)"
fi

# --- 3. Python packages -------------------------------------------------------------------
# Prints the requirement lines (from files, or given with --line) that are not satisfied yet.
unsatisfied() {
  "$PY" - "$@" <<'PYEOF'
import sys
from importlib import metadata

EXCLUDED = {"torch", "torchvision", "torchaudio", "kornia", "spandrel"}
try:
    from packaging.requirements import Requirement
except ImportError:  # no packaging: let pip decide for everything
    Requirement = None

lines, given, skipped, args = [], set(), set(), sys.argv[1:]
while args:
    arg = args.pop(0)
    if arg == "--line":
        lines.append(args.pop(0))
        given.add(lines[-1])
    elif arg == "--skip":   # a file's requirement on this name, replaced by a --line
        skipped.add(args.pop(0))
    else:
        with open(arg, encoding="utf-8") as f:
            lines += f.read().splitlines()
for line in lines:
    given_line = line in given
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        continue
    if Requirement is None:
        print(line)
        continue
    req = Requirement(line)
    if req.name.lower().replace("_", "-") in EXCLUDED:
        continue
    if req.name.lower().replace("_", "-") in skipped and not given_line:
        continue
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        print(line)
        continue
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        print(line)
PYEOF
}

test_args=()
for dep in "${TEST_DEPS[@]}"; do test_args+=(--line "$dep"); done
# Without spandrel (left out above) the host lacks its Upscale Model Loader node, and the frontend it pins (1.27.10)
# then drops Load Checkpoint's class type from a loaded workflow: every template built on Load Checkpoint is refused
# when queued. Frontends from 1.28.5 fix it; 1.28.8 loads, lists and queues all the templates on this host.
if ! "$PY" -c "import spandrel" >/dev/null 2>&1; then
  test_args+=(--skip comfyui-frontend-package --line "$FRONTEND_WITHOUT_SPANDREL")
fi
listing=$(unsatisfied "$HOST/requirements.txt" "$REPO/requirements.txt" "${test_args[@]}") \
  || fail "could not read the requirement files ($HOST/requirements.txt, $REPO/requirements.txt)"
missing=()
if [[ -n "$listing" ]]; then mapfile -t missing <<< "$listing"; fi
if (( ${#missing[@]} == 0 )); then
  say "packages: ComfyUI's, the pack's and the test tools' requirements are satisfied"
else
  say "packages: installing ${missing[*]}"
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  # Keep the torch that is there: nothing installed here may replace it.
  "$PY" -c 'from importlib import metadata; print("torch==" + metadata.version("torch"))' > "$constraints"
  pip_install -c "$constraints" "${missing[@]}"
fi

# --- 4. Chromium (tests/browser) ------------------------------------------------------------
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  say "chromium: present"
elif command -v apt-get >/dev/null 2>&1; then
  say "chromium: missing, installing it with apt-get (for tests/browser)"
  sudo=()
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
  if ! { ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
         || { ${sudo[@]+"${sudo[@]}"} apt-get update && ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; }; then
    say "note: chromium could not be installed; the browser tests (tests/browser) will be skipped"
  fi
else
  say "note: no chromium and no apt-get here; install Chromium yourself, or the browser tests (tests/browser) are skipped"
fi

say "ready. Run the tests with: python -m pytest -q tests"

# --- the main job ---------------------------------------------------------------------------
if (( run_job )); then
  say "running $MAIN_WORKFLOW (headless, CPU, built-in Toy World Model)"
  "$PY" -m workshop.run_workflow "$MAIN_WORKFLOW" --out out/ --threads 1
  say "images are in $REPO/out/"
fi
