"""Write each example workflow's card picture: example_workflows/<name>.jpg beside <name>.json.

The editor's template browser shows ``<name>.jpg`` as a workflow's thumbnail. Each picture is
what the workflow itself saves when run headlessly on the built-in Toy World Model (its saved
images side by side, in the order they were written, or one saver's first: ``CARD_FIRST``), labelled with the built-in model it ran on, so a user
sees the kind of result to expect before opening it. The workflows built on Load Checkpoint run
with the checkpoint swapped for the Toy World Model (the runner's ``builtin``,
``make_workflows.builtin_for``: the bundled sample image at the toy world's size; the Flux
workflows on the toy flow world's DiT, the SD3 ones on the tiny random SD3 demo model, labelled so) and the toy
world's prompts (``make_workflows.toy_overrides``), at their full settings, and are labelled as
Toy World Model output.

    python -m workshop.make_thumbnails            # run every example workflow, write the pictures
    python -m workshop.make_thumbnails NAME ...   # only these workflows
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "example_workflows"
HEIGHT = 192          # pixels of each image in the strip
MOST = 4              # images shown at most
# Workflows whose card shows one saver's pictures first (the file name's prefix, as SaveImage writes it; several
# prefixes: in that order): where the host's execution order would put a comparison first
CARD_FIRST = {"dreambooth_subject": ("dreambooth_subject_",), "dreambooth_fine_tune": ("dreambooth_fine_tune_subject_",),
              "textual_inversion_word": ("textual_inversion_word_",),
              "custom_diffusion_subject": ("custom_diffusion_subject_",),
              # the Custom-Edit strip, then the subject's samples
              "custom_edit_two_objects": ("custom_edit_two_objects_00", "custom_edit_two_objects_subject_"),
              "Flux - Attention maps": ("flux_attention_mask_",)}   # the two savers' order is the executor's
LABELS = {"InvertEditToyModel": "Toy World Model output", "InvertEditDemoModel": "demo model output (random weights)",
          "CheckpointLoaderSimple": "Toy World Model output"}   # run with make_workflows.TOY_BUILTIN


def label_of(workflow: Path) -> str:
    """Which built-in model the workflow runs on, as the picture's label."""
    from workshop.make_workflows import TOY_BUILTIN, builtin_for

    builtin = builtin_for(workflow.stem)
    text = workflow.read_text(encoding="utf-8")
    if '"CheckpointLoaderSimple"' in text and builtin.startswith("demo-"):
        return f"{builtin.removeprefix('demo-')} demo model output (random weights: the mechanics, not a picture)"
    if '"CheckpointLoaderSimple"' in text and builtin != TOY_BUILTIN:
        return "Toy World Model output (flow DiT, Flux.1 dev architecture)"
    return next((label for node, label in LABELS.items() if f'"{node}"' in text), "output")


def thumbnail(images: list[Path], label: str) -> Image.Image:
    """The saved images side by side (at most ``MOST``, ``HEIGHT`` high), labelled."""
    tiles = []
    for path in images[:MOST]:
        im = Image.open(path).convert("RGB")
        tiles.append(im.resize((max(1, round(im.width * HEIGHT / im.height)), HEIGHT), Image.NEAREST))
    gap = 6
    strip = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), HEIGHT + 20), (24, 24, 24))
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    ImageDraw.Draw(strip).text((4, HEIGHT + 4), label, fill=(220, 220, 220))
    return strip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: every example workflow)")
    args = parser.parse_args(argv)
    from workshop.headless.boot import boot
    from workshop.headless.runner import CHECKPOINT_LOADER, run_workflow
    from workshop.make_workflows import builtin_for, toy_overrides

    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-thumbnails-"))
    paths = [FOLDER / f"{n}.json" for n in args.names] if args.names else sorted(FOLDER.glob("*.json"))
    for path in paths:
        out = Path(tempfile.mkdtemp(prefix=f"thumb-{path.stem}-"))
        on_checkpoint = f'"{CHECKPOINT_LOADER}"' in path.read_text(encoding="utf-8")
        written = run_workflow(path, out, builtin=builtin_for(path.stem) if on_checkpoint else None,
                               overrides=toy_overrides(path.stem), host=host)
        images = [p for p in written if p.suffix == ".png"]
        firsts = CARD_FIRST.get(path.stem, ())
        # stable: each prefix's pictures, then the rest, each in the order they were written
        images.sort(key=lambda p: next((i for i, f in enumerate(firsts) if p.name.startswith(f)), len(firsts)))
        if not images:
            print(f"{path.name}: saves no image, no thumbnail", file=sys.stderr)
            continue
        target = path.with_suffix(".jpg")
        thumbnail(images, label_of(path)).save(target, quality=88)
        print(f"wrote {target.relative_to(REPO)} ({len(images[:MOST])} of {len(images)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
