#!/usr/bin/env python
"""Run a ComfyUI canvas workflow headlessly, without starting the server or the UI.

    python -m workshop.run_workflow "example_workflows/Start here - Invert and edit.json" --out out/
    python -m workshop.run_workflow my_edit.json --image photo.png --ckpt v1-5-pruned-emaonly.safetensors
    python -m workshop.run_workflow "example_workflows/SD1.5 - Prompt-to-Prompt edit.json" --builtin toy

The workflow is a file saved from the editor (Workflow > Save), e.g. one of example_workflows/. It is
converted to the executor's format with the node definitions of the ComfyUI found (``--comfyui``,
else COMFYUI_PATH, else the ComfyUI/ this pack sits in, else ~/comfy/ComfyUI), executed by
ComfyUI's own executor in this process (CPU unless ``--gpu``), and the files its output nodes
write (SaveImage's images, saved inversions) into ComfyUI's output folder are copied into ``--out``.

``--image`` replaces the image of every LoadImage node. ``--ckpt`` (a file, or a name in
ComfyUI's models/checkpoints) replaces the pack's built-in model loaders (Toy World Model,
Demo Model) and any Load Checkpoint node. ``--builtin toy`` is the reverse, for the workflows
built on Load Checkpoint: the Toy World Model (two objects) replaces every Load Checkpoint, Upscale
Image makes its 512x512 images, and Load Image gets the bundled sample unless ``--image`` is given
(``toy-one-object``: the one-object world at 128 px; ``toy-flow``: the flow DiT for the Flux workflows,
256 px; ``demo-sd1``, ``demo-sd2-v``, ``demo-sdxl``, ``demo-flux-dev``, ``demo-flux-schnell``, ``demo-sd3``,
``demo-qwen-image``: the random-weight Demo Model at 128 px; a Qwen-Image template's Load Diffusion Model, Load
CLIP and Load VAE become one such model). ``--set NODE.INPUT=VALUE`` sets one input (NODE: id, type or title; VALUE:
JSON, else a string).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from workshop.headless.runner import BUILTIN_SWAPS

REPO = Path(__file__).resolve().parents[1]


class _Buffer(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _parse_sets(items: list[str]) -> dict:
    overrides: dict = {}
    for item in items:
        target, sep, raw = item.partition("=")
        node, dot, name = target.rpartition(".")
        if not sep or not dot or not node or not name:
            raise SystemExit(f"error: --set expects NODE.INPUT=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault(node, {})[name] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.run_workflow", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("workflow", type=Path, help="canvas workflow JSON (saved from the editor)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="where to copy the files the workflow saved (default: out/)")
    parser.add_argument("--image", type=Path, help="image file for every LoadImage node")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--ckpt", help="checkpoint file or name replacing the built-in model / Load Checkpoint")
    model.add_argument("--builtin", choices=list(BUILTIN_SWAPS),
                       help="run a Load Checkpoint workflow on a built-in model (toy: 512 px; toy-flow, the flow DiT "
                            "for the Flux workflows: 256 px; the others 128 px; the bundled sample image)")
    parser.add_argument("--comfyui", type=Path, help="the ComfyUI folder to use")
    parser.add_argument("--input-directory", type=Path, help="ComfyUI's input folder (default: ComfyUI/input)")
    parser.add_argument("--output-directory", type=Path, help="ComfyUI's output folder (default: ComfyUI/output)")
    parser.add_argument("--temp-directory", type=Path, help="ComfyUI's temp folder (default: ComfyUI/temp)")
    parser.add_argument("--gpu", action="store_true", help="use ComfyUI's default device instead of the CPU")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is "
                        "fastest on a busy machine)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="set an input after conversion (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show ComfyUI's log and tracebacks")
    args = parser.parse_args(argv)
    overrides = _parse_sets(args.sets)

    root = logging.getLogger()
    buffer = None
    if args.verbose:
        os.environ.setdefault("INVERTEDIT_LOG", "INFO")
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:  # the host's start-up chatter (optional modules it lacks) is kept, and shown on failure
        os.environ.setdefault("INVERTEDIT_LOG", "WARNING")
        buffer = _Buffer()
        buffer.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(buffer)
        root.setLevel(logging.WARNING)

    def fail(message: str, traceback: str | None = None) -> int:
        print(f"error: {message}", file=sys.stderr)
        if args.verbose and traceback:
            print(traceback, file=sys.stderr)
        elif buffer is not None and buffer.lines:
            tail = "\n".join(buffer.lines[-15:])
            print(f"--- last lines of ComfyUI's log (all of it with --verbose) ---\n{tail}", file=sys.stderr)
        return 1

    if not args.workflow.is_file():
        return fail(f"workflow not found: {args.workflow}")
    if args.image is not None and not args.image.is_file():
        return fail(f"image not found: {args.image}")
    from workshop.headless.host import find_host, host_missing_reason

    if args.comfyui is not None and not ((args.comfyui / "main.py").is_file() and (args.comfyui / "comfy").is_dir()):
        return fail(f"--comfyui {args.comfyui} is not a ComfyUI folder (no main.py and comfy/ there)")
    host_path = args.comfyui or find_host()
    if host_path is None:
        return fail("ComfyUI not found: " + host_missing_reason() + ". Run scripts/setup.sh, or pass --comfyui PATH.")
    started = time.perf_counter()
    try:
        from workshop.headless.boot import boot
        from workshop.headless.runner import WorkflowError, run_workflow

        # ComfyUI's own input/output folders, as in the editor: saved files stay where
        # ComfyUI users expect them (and where Load nodes find them); copies go to --out.
        host = boot(host_path=host_path, cpu=not args.gpu,
                    folders={"input": args.input_directory, "output": args.output_directory,
                             "temp": args.temp_directory})
    except Exception as e:  # the host failed to start or to load the pack
        import traceback

        return fail(f"could not start ComfyUI: {e}", traceback.format_exc())
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"ComfyUI {host.path} ({'default device' if args.gpu else 'CPU'}), started in "
          f"{time.perf_counter() - started:.1f}s", file=sys.stderr)

    tty = sys.stderr.isatty()

    def on_event(event, data):
        if event == "executing" and data.get("node") is not None:
            print(("\r\033[K" if tty else "") + f"  {data.get('class_type', '')} (node {data['node']})", file=sys.stderr)
        elif event == "progress_state" and tty:
            for state in (data.get("nodes") or {}).values():
                if state.get("state") == "running" and state.get("max", 1) > 1:
                    print(f"\r    {int(state['value'])}/{int(state['max'])}", file=sys.stderr, end="\033[K")

    started = time.perf_counter()
    try:
        written = run_workflow(args.workflow, args.out, image=args.image, ckpt=args.ckpt, overrides=overrides,
                               builtin=args.builtin, host=host, on_event=on_event)
    except WorkflowError as e:
        return fail(str(e), getattr(e, "traceback", None))
    except Exception as e:
        import traceback

        return fail(f"{type(e).__name__}: {e}", traceback.format_exc())
    if tty:
        print("\r\033[K", file=sys.stderr, end="")
    print(f"ran {args.workflow} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    if not written:
        print("the workflow saved no images (it has no SaveImage node?)", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
