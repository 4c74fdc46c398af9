"""Write each example workflow's card picture: example_workflows/<name>.jpg beside <name>.json.

The editor's template browser shows ``<name>.jpg`` as a workflow's thumbnail. Each card is what
the workflow itself shows when run headlessly on a built-in model: its source image, its result (what
its one Save Image writes) and what its Preview Image nodes show, in that order, at most four panels
in a 2 x 2 grid, each labelled with its node's title ("source", "edit", "reconstruction", "mask"),
and the card with the built-in model it ran on, so a user sees the kind of result to expect before
opening it. The workflows built on Load Checkpoint run
with the checkpoint swapped for the Toy World Model (the runner's ``builtin``,
``make_workflows.builtin_for``: the bundled sample image at the toy world's size; the Flux
workflows on the toy flow world's DiT; the SD3 and Qwen-Image ones, whose built-in models are random and draw
noise, show the same technique's Flux template, labelled so, ``STAND_INS``) and the toy
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
MOST = 4              # panels shown at most
LABELS = {"InvertEditToyModel": "Toy World Model output", "InvertEditDemoModel": "demo model output (random weights)",
          "CheckpointLoaderSimple": "Toy World Model output"}   # run with make_workflows.TOY_BUILTIN


def label_of(workflow: Path) -> str:
    """Which built-in model the workflow runs on, as the picture's label."""
    from workshop.make_workflows import builtin_for

    builtin = builtin_for(workflow.stem)
    text = workflow.read_text(encoding="utf-8")
    on_model = '"CheckpointLoaderSimple"' in text or '"UNETLoader"' in text   # a template for the user's model
    if on_model and builtin.startswith("demo-"):
        return f"{builtin.removeprefix('demo-')} demo model output (random weights: the mechanics, not a picture)"
    if on_model and builtin == "toy-flow":
        return "Toy World Model output (flow DiT, Flux.1 dev architecture)"
    return next((label for node, label in LABELS.items() if f'"{node}"' in text), "output")


CELL = 256             # pixels of each panel's side on the card
LABEL_BAR = 34         # two lines of text

# Where no built-in model of a template's family draws (SD3: the demo SD3 has random weights), its card shows the
# same technique's template of the nearest family on a built-in model that draws, and says so
STAND_INS = {f"SD3 - {t}": f"Flux - {t}" for t in ("FlowEdit", "FTEdit", "DNAEdit", "FlowAlign", "ConsistEdit", "Prompt-to-Prompt edit", "RF-Inversion edit",
                                                  "Flow inversion and edit")}
# Qwen-Image: the tests run its templates on the Demo Model's tiny random Qwen-Image, which draws noise
STAND_INS.update({f"Qwen-Image - {t}": f"Flux - {t}" for t in ("FlowEdit", "Prompt-to-Prompt edit", "KV-Edit")})
STAND_IN_LABEL = ("the same technique on the built-in flow model (Flux.1 architecture): no built-in SD3 model "
                  "draws")


def stand_in_label(name: str) -> str:
    """The label of a card that shows another family's template: which, and why."""
    if name in CARD_RUNS:   # an instruction lock template: its Kontext template or KV-Edit's Flux one on the toy flow DiT
        return (("the Kontext template" if CARD_RUNS[name][1] is not None else f"{CARD_RUNS[name][0]}")
                + " on the built-in flow model (Flux.1 architecture, trained on captions)")
    return STAND_IN_LABEL.replace("SD3", name.split(" - ")[0])
# What a card should say beside its model: where the built-in model, not the technique, limits what it shows
CARD_NOTES = {name: "run on the Toy World Model (SD1.5-sized): no built-in SDXL model draws"
              for name in ("SDXL - DDIM inversion and edit", "SDXL - Prompt-to-Prompt edit")}
CARD_NOTES.update({f"SDXL - {t}": "run on the one-object Toy World Model (128 px): no built-in SDXL model draws"
                   for t in ("DreamBooth LoRA", "Textual Inversion", "Custom Diffusion")})
# ... and where the toy model, not the technique's defaults, is what the card shows failing (docs/measurements.md)
CARD_NOTES.update({
    "Flux - Stable Flow": "toy model's limit: Stable Flow needs a deep DiT (Flux.1: 57 blocks, this one: 6); "
                          "no edit here",
    "Flux - RF-Inversion edit": "on this toy model RF-Inversion moves the other object's edge (docs/measurements.md)",
    "SV3D - Edit the orbit views of one image (your models)":
        "the orbit of a tiny random SV3D (the tests'): noise, which the one-object toy then edits",
    "SD3 - RF-Inversion edit": "on this toy model RF-Inversion moves the other object's edge (docs/measurements.md)",
    "Toy - MasaCtrl edit": "a change of shape, which this toy model draws roughly",
    "Flux - ConsistEdit": "ConsistEdit keeps the object's outline: the colour changes, the circle stays round",
})
CARD_NOTES.update({f"Qwen-Image - {t}": "the Flux template's picture: a tiny random Qwen-Image (the tests') draws noise"
                   for t in ("FlowEdit", "Prompt-to-Prompt edit", "KV-Edit")})
# A technique's own card runs (its workflows.py's CARD_RUNS: name -> (the template run, the runner's builtin or None
# for the template's own, overrides or None for its toy ones)): the instruction lock (issue 81), whose editors no
# built-in model is: KV-Edit's Flux templates, or its Kontext template on the toy flow model
CARD_RUNS = {name: run for module in __import__("workshop.make_workflows", fromlist=["_MODULES"])._MODULES
             for name, run in getattr(module, "CARD_RUNS", {}).items()}
STAND_INS.update({name: shown for name, (shown, builtin, _) in CARD_RUNS.items() if shown != name})
for _name, (_shown, _builtin, _) in CARD_RUNS.items():
    CARD_NOTES[_name] = ("the same lock on a caption edit: no built-in model follows instructions" if _builtin is None
                         else "toy captions typed as instructions: it follows none; what the lock keeps is the point")


def panel_label(title: str) -> str:
    """A node's title as a panel's label: its words before any parenthesis ("Edit (target prompt)" -> "edit")."""
    text = title.split(" (")[0].strip()
    if not text:
        return "output"
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]   # "VAE round trip" stays


def card_panels(prompt: dict, pictures: list, input_dir: Path) -> list[tuple[str, Path]]:
    """The card's panels in reading order: the source (the first Load Image's picture), the saved result
    (every picture of the Save Image), then what the Preview Image nodes showed (the first of each), at
    most ``MOST``."""
    panels: list[tuple[str, Path]] = []
    loads = [v for v in prompt.values() if v["class_type"] == "LoadImage"]
    if loads:
        panels.append(("source", input_dir / str(loads[0]["inputs"]["image"])))
    saved = [p for p in pictures if p.class_type == "SaveImage"]
    shown = [p for p in pictures if p.class_type == "PreviewImage"]
    for i, p in enumerate(saved):
        panels.append((panel_label(p.title) + (f" {i + 1}" if len(saved) > 1 else ""), p.path))
    seen = set()
    for p in shown:
        if p.node not in seen:
            seen.add(p.node)
            panels.append((panel_label(p.title), p.path))
    # a result of several pictures keeps its first two when others are to be shown
    if len(saved) > 2 and len(panels) > MOST:
        panels = panels[:1 + 2] + panels[1 + len(saved):]
    return panels[:MOST]


def thumbnail(panels: list[tuple[str, Path]], label: str) -> Image.Image:
    """The panels in a 2 x 2 grid (a square card, as the template browser shows it), each labelled at its
    top left, and the built-in model's ``label`` at the bottom."""
    cols = 2
    rows = max(1, -(-len(panels) // cols))
    card = Image.new("RGB", (cols * CELL, rows * CELL + LABEL_BAR), (24, 24, 24))
    draw = ImageDraw.Draw(card)
    for i, (name, path) in enumerate(panels):
        im = Image.open(path).convert("RGB")
        scale = CELL / max(im.width, im.height)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.NEAREST)
        x, y = (i % cols) * CELL, (i // cols) * CELL
        card.paste(im, (x + (CELL - im.width) // 2, y + (CELL - im.height) // 2))
        width = int(draw.textlength(name)) + 10
        draw.rectangle([x, y, x + width, y + 16], fill=(0, 0, 0))
        draw.text((x + 5, y + 2), name, fill=(255, 255, 255))
    for i, line in enumerate(label.split("\n")[:2]):
        draw.text((4, rows * CELL + 3 + 15 * i), line, fill=(220, 220, 220))
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: every example workflow)")
    args = parser.parse_args(argv)
    from workshop.headless.boot import boot
    from workshop.headless.runner import CHECKPOINT_LOADER, UNET_LOADER, execute, load_workflow, pictures, prepare_prompt
    from workshop.make_workflows import builtin_for, toy_overrides

    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-thumbnails-"))
    paths = [FOLDER / f"{n}.json" for n in args.names] if args.names else sorted(FOLDER.glob("*.json"))
    for path in paths:
        shown = FOLDER / f"{STAND_INS.get(path.stem, path.stem)}.json"   # the template whose run the card shows
        workflow = load_workflow(shown)
        on_checkpoint = any(f'"{loader}"' in shown.read_text(encoding="utf-8") for loader in (CHECKPOINT_LOADER, UNET_LOADER))
        _, card_builtin, card_overrides = CARD_RUNS.get(path.stem, (None, None, None))
        prompt = prepare_prompt(workflow, builtin=card_builtin or (builtin_for(shown.stem) if on_checkpoint else None),
                                overrides=card_overrides if card_overrides is not None else toy_overrides(shown.stem),
                                host=host)
        outputs = execute(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}}, host=host)
        panels = card_panels(prompt, pictures(prompt, outputs), Path(host.input_dir))
        if len(panels) < 2:
            print(f"{path.name}: shows no picture, no thumbnail", file=sys.stderr)
            continue
        target = path.with_suffix(".jpg")
        label = stand_in_label(path.stem) if path.stem in STAND_INS or path.stem in CARD_RUNS else label_of(path)
        if path.stem in CARD_NOTES:
            label += "\n" + CARD_NOTES[path.stem]
        thumbnail(panels, label).save(target, quality=88)
        print(f"wrote {target.relative_to(REPO)} ({', '.join(name for name, _ in panels)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
