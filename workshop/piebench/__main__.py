"""PIE-Bench on your own checkpoint: each listed workflow of ``example_workflows/`` run on every item of a
PIE-Bench-format folder (PnPInversion's ``mapping_file.json`` + ``annotation_images/``) with your model, headless,
through ComfyUI's own executor; then PnPInversion's metrics (``evaluation/evaluate.py``'s default list) of every
edit against its source image, written as their ``evaluate.py`` writes them (``OUT/evaluation_result.csv``) and as
the paper's table of means (``OUT/summary.md``, ``OUT/summary.csv``: structure distance x10^3, background PSNR,
LPIPS x10^3, MSE x10^4, SSIM x10^2 outside the edit mask, CLIP similarity of the whole edit and of its edited part).

    python -m workshop.piebench --data DIR --workflows "Flux - FlowEdit,Flux - RF-Solver-Edit" --ckpt MODEL --out OUT

PSNR, MSE and SSIM need no weights and are always computed. Structure distance, LPIPS and CLIP need their
networks' weights on disk (``--dino``, ``--lpips-squeezenet``, ``--clip``); a metric without them is not computed:
its column says "skipped: <why>" and the run says so on stderr. Edits are kept in ``OUT/<workflow>/annotation_images``
(PnPInversion's layout, as PNG); ``--skip-existing`` scores those again without running (e.g. once weights are at hand).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import format as F
from . import run as R
from . import table as T
from . import metrics as M
from .metrics import METRICS, Calculator, Skipped

log = logging.getLogger("invertedit.piebench")

#: what each weighted metric needs, said where it is skipped
WEIGHTS = {
    "clip": "a local copy of openai/clip-vit-large-patch14 (a folder transformers' CLIPModel loads: "
            "huggingface-cli download openai/clip-vit-large-patch14 --local-dir DIR), the model PnPInversion's CLIPScore names",
    "structure": "a local copy of facebook/dino-vitb8 (a folder transformers' ViTModel loads), the DINO ViT-B/8 their "
                 "structure distance loads from torch.hub",
    "lpips": "torchvision's squeezenet1_1-b8a52dc0.pth (download.pytorch.org/models/), the network of their "
             "LPIPS (net_type='squeeze'); the LPIPS heads come from an installed torchmetrics or lpips, else --lpips-heads",
}


def _parse_sets(items: list[str]) -> dict:
    from workshop.run_workflow import _parse_sets as parse
    return parse(items)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workshop.piebench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a PIE-Bench folder: mapping_file.json, annotation_images/")
    p.add_argument("--workflows", required=True,
                   help="comma-separated template names of example_workflows/ (or .json paths); NAME#K scores the "
                        "workflow's K-th picture (previews in graph order, then saved) instead of its saved one")
    p.add_argument("--out", type=Path, required=True, help="where the edits, evaluation_result.csv and summary go")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--ckpt", help="your checkpoint (a file, or a name in ComfyUI's checkpoints): every Load "
                                      "Checkpoint loads it (default: the name the template has)")
    from workshop.headless.runner import BUILTIN_SWAPS
    model.add_argument("--builtin", choices=list(BUILTIN_SWAPS), help="a built-in model instead (toy-flow: the toy "
                                                                       "flow world's Flux DiT; for trying the tool)")
    p.add_argument("--models-dir", type=Path, action="append", default=[],
                   help="a ComfyUI models folder (checkpoints/, diffusion_models/, clip/, vae/, ...) to look in too")
    p.add_argument("--limit", type=int, default=None, help="only the first N items (after --categories)")
    p.add_argument("--categories", default="", help="editing type ids to run, e.g. 0-8 or 1,3,6 (default: all 0-9)")
    p.add_argument("--metrics", default=",".join(METRICS), help="comma-separated (default: evaluate.py's)")
    p.add_argument("--clip", type=Path, help=f"CLIP similarity: {WEIGHTS['clip']}")
    p.add_argument("--dino", type=Path, help=f"structure distance: {WEIGHTS['structure']}")
    p.add_argument("--lpips-squeezenet", type=Path, help=f"LPIPS: {WEIGHTS['lpips']}")
    p.add_argument("--lpips-heads", type=Path, help="LPIPS v0.1 squeeze heads (lpips' weights/v0.1/squeeze.pth; "
                                                    "default: the copy inside an installed torchmetrics or lpips)")
    p.add_argument("--as-of", default=M.DEFAULT_AS_OF, choices=M.AS_OF,
                   help="compute SSIM, LPIPS and DINO's input as the libraries their calculator calls did when "
                        "PnPInversion released it (2023: torchmetrics 1.2, SSIM's 5-px border out of the mean; "
                        "torchvision before 0.17, no antialiasing; the default) or do now (current)")
    p.add_argument("--megapixels", type=float, default=None,
                   help="the size the templates scale the image to (their Scale Image to Total Pixels; default: "
                        "theirs, 1 MP for Flux); the edit is scored at the item's size")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="set an input of every workflow that has that node (id, type or title)")
    p.add_argument("--quick", action="store_true", help="with --builtin: the tests' quick settings of the templates")
    p.add_argument("--skip-existing", action="store_true", help="score an edit already in OUT instead of running it")
    p.add_argument("--gpu", action="store_true", help="ComfyUI's default device instead of the CPU")
    p.add_argument("--comfyui", type=Path, help="the ComfyUI folder to use")
    p.add_argument("--device", default="cpu", help="torch device for the metrics' networks (default cpu)")
    return p


def boot_host(args):
    from workshop.headless.boot import boot
    work = Path(tempfile.mkdtemp(prefix="piebench-"))
    host = boot(host_path=args.comfyui, cpu=not args.gpu,
                folders={"input": work / "input", "output": work / "output", "temp": work / "temp"})
    if args.models_dir:
        import folder_paths
        for root in args.models_dir:
            for kind in list(folder_paths.folder_names_and_paths):
                if (root / kind).is_dir():
                    folder_paths.add_model_folder_path(kind, str(root / kind), is_default=True)
    return host, work


def evaluate(calc: Calculator, data: Path, out: Path, specs: list[str], items: list[F.Item], metrics: list[str],
             failed: dict) -> tuple[list[str], list[list]]:
    """``evaluate.py``'s loop: for each item its mask (``mask_decode``, 3 channels), prompts without brackets, source
    image, and for each method its edit and every metric."""
    from PIL import Image
    rows = []
    for item in items:
        src_image = Image.open(data / F.IMAGES / item.image_path)
        w, h = src_image.size
        mask = F.mask_decode(item.mask_rle, (h, w))   # PIE-Bench's images are 512 x 512, evaluate.py's shape
        mask = mask[:, :, np.newaxis].repeat([3], axis=2)
        row = [item.key]
        for spec in specs:
            if (spec, item.key) in failed:
                row += [f"failed: {failed[spec, item.key]}"] * len(metrics)
                continue
            tgt_image = Image.open(R.output_path(out, spec, item)).convert(src_image.mode)
            for metric in metrics:
                try:
                    row.append(calc.calculate(metric, src_image, tgt_image, mask, mask, item.original_prompt,
                                              item.editing_prompt))
                except Skipped as e:
                    row.append(f"skipped: {e}")
        rows.append(row)
    return [f"{m}|{metric}" for m in specs for metric in metrics], rows


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    items = F.load_items(args.data, F.parse_categories(args.categories), args.limit)
    if not items:
        raise SystemExit(f"--data {args.data}: no items (after --categories {args.categories or 'all'})")
    specs = [s.strip() for s in args.workflows.split(",") if s.strip()]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    calc = Calculator(clip=args.clip, dino=args.dino, lpips=(args.lpips_squeezenet, args.lpips_heads), device=args.device,
                      as_of=args.as_of)
    for metric in metrics:
        why = calc.why_skipped(metric)
        if why:
            need = next(WEIGHTS[k] for k in WEIGHTS if metric.startswith(k))
            log.warning("SKIPPED: PIE-Bench metric %s is not computed: %s; give %s", metric, why, need)
    overrides = _parse_sets(args.sets)
    args.out.mkdir(parents=True, exist_ok=True)
    failed: dict = {}
    todo = [(s, it) for s in specs for it in items
            if not (args.skip_existing and R.output_path(args.out, s, it).is_file())]
    if todo:
        host, work = boot_host(args)
        t0 = time.time()
        for k, (spec, item) in enumerate(todo):
            image = R.masked_input(args.data / F.IMAGES / item.image_path, item, work / "items")
            try:
                R.run_one(host, spec, item, image, R.output_path(args.out, spec, item), builtin=args.builtin,
                          ckpt=args.ckpt, overrides=overrides, quick=args.quick, megapixels=args.megapixels)
            except Exception as e:   # one failed item does not lose the others: its cells say why
                failed[spec, item.key] = f"{type(e).__name__}: {e}".replace("\n", " ")[:300]
                print(f"FAILED: {spec} on item {item.key}: {failed[spec, item.key]}", file=sys.stderr)
            print(f"  {spec} / {item.key} ({k + 1}/{len(todo)}, {time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    header, rows = evaluate(calc, args.data, args.out, specs, items, metrics, failed)
    T.write_items(args.out / T.RESULT_CSV, specs, metrics, rows)
    note = (f"PIE-Bench metrics (PnPInversion's evaluate.py) of {len(items)} item(s) of {args.data}"
            f"{' (categories ' + args.categories + ')' if args.categories else ''}; model: "
            f"{args.ckpt or args.builtin or 'the templates own'}; the metrics' libraries as of {args.as_of}.")
    text = T.write_summary(args.out, ["file_id"] + header, [[str(v) for v in r] for r in rows], note)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
