"""DreamBooth on the toy world (issue 28): teach the one-object Toy World Model a subject it has
never drawn, then judge what it draws, through the real nodes.

    python -m workshop.benchmarks.dreambooth_toy [--seeds 20] [--steps 500] [--lr 1e-4] [--rank 4]
    python -m workshop.benchmarks.dreambooth_toy --full [--lr 5e-6 --steps 800]   # DreamBooth Fine-Tune
    python -m workshop.benchmarks.dreambooth_toy --sizes    # the LoRA's size at SD1.5 and SDXL size
    python -m workshop.benchmarks.dreambooth_toy --tiny     # steps per second on the tiny models
    python -m workshop.benchmarks.dreambooth_toy --full --background blue   # the workflows' photos and prompts
    python -m workshop.benchmarks.dreambooth_toy --world 2 --full [--edit-cases 20]   # world 2, and Custom-Edit
    python -m workshop.benchmarks.dreambooth_toy --world 2 --subject orange --full --lr 1e-4 --steps 800 --class-images 50

The subject is a hollow red square (a frame): the world has only solid shapes, so the untouched
model never drew one. Four photos of it (rendered on white at different places and sizes) are
VAE-encoded and taught with the instance prompt "a sks red square on a white background" (the
paper's "a [V] [class noun]"); the class images are drawn by the untouched model with KSampler
from the class prompt "a red square on a white background" (the script's --num_class_images 100).

Rows: the untouched model, DreamBooth LoRA with the prior-preservation loss (lambda 1), and without
it (lambda 0), same seed and steps. Columns, each over ``--seeds`` seeds of the stock KSampler
(ddim, 20 steps, cfg 5), judged by the exact judge (``judge.filled`` tells a frame from a solid
shape: under a third of its inner box covered):
- subject: the instance prompt draws a hollow red object (the judge's shape reading compares
  solid templates, so a frame's shape is not read);
- class: the class prompt draws a solid red square, as the untouched model does (the paper's
  class prior: what the prior loss keeps);
- class hollow: the class prompt draws the subject (the drift, lower is better);
- other colours: "a {colour} square on a white background" for the four other object colours
  draws a solid square of that colour.

``--world 2``: the same on the two-object world's model (512 px; the subject and the class images
alone on white, world 2's one-object captions), judged by world 2's judge (its largest object), and
**Custom-Edit** (Choi et al.: the taught model, an inversion and Prompt-to-Prompt) on
``--edit-cases`` rendered two-object photos, each a red square and another object on white: the
photo inverted on the row's model (DDIM Invert, Direct Inversion), Attention Inject in refine mode
with the target prompt adding the identifier ("a sks red square and a blue circle ..."), cross 0.8,
self 0.4 (the world-2 benchmark's Prompt-to-Prompt), with and without its local blend on "square"
(threshold 0.3, start 0.2), one stock KSampler (Advanced) run of the pair at the subject's guidance
(``Subject.edit_cfg``; ``--edit-cfg``). Judged per case: subject placed (the read object nearest the
square is red and hollow, its centre within a quarter of the square's half-side), other object kept
(a read object matches it: colour, shape, centre within 3 px, size within 10%, the world-2
benchmark's "other kept"), background kept (read colour), and the whole case (all three); with the
PSNR outside both objects against the row's own reconstruction.

``--subject orange`` (world 2): an orange square, "a sks square on a white background" (the identifier where a
colour word stands), class "a red square ...", read by ``scenes_judge.tint`` (the mean colour of what is not
background, named among the palette and orange); Custom-Edit swaps "red" for "sks" (replace) at cfg 2: from
an inverted photo, guidance carries the taught colour along red -> orange -> yellow as it grows (orange at
2, yellow from 3; docs/measurements.md, "Why Custom-Edit's orange came out yellow"). World 2's shipped text
encoder carries "sks" to the noun after it (``train_scenes.IDENTIFIER``, ``bound_text.bind_identifier``).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from workshop.benchmarks.toyworld import case_context, decode, pair_edit
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld import world as W
from workshop.toyworld import scenes_judge
from workshop.toyworld.judge import filled, judge
from workshop.toyworld.subject import ORANGE, orange_photos, subject_photos
from workshop.toyworld.train_scenes import IDENTIFIER

BACKGROUND = "white"   # the benchmark's (--background blue: the workflows' photos and prompts)


HOLLOW = 1 / 3   # judge.filled below this: a frame


@dataclass(frozen=True)
class Subject:
    """What ``--subject`` teaches and how its samples and Custom-Edit's are read. Every subject's class is
    the red square ("a red square on a ... background")."""
    what: str                     # the table's title
    taught: str                   # the instance prompt's words before "on a ... background", "{}" the new word
    column: str                   # the column of the class prompt drawing the subject
    edit_mode: str                # Custom-Edit's Prompt-to-Prompt mode ("a red square" -> ``taught`` with "sks")
    tints: dict                   # colours ``scenes_judge.tint`` names besides the palette (none: not read)
    edit_cfg: float               # Custom-Edit's guidance (docs/measurements.md: the taught colour moves with it)
    photos: Callable              # (background, world) -> the subject's 4 photos [4, H, W, 3]
    drawn: Callable               # Seen -> whether a sample is the subject
    placed: Callable              # (image, its reading, the edited scene) -> whether Custom-Edit put it there


def _frame_placed(image: torch.Tensor, reading, scene) -> bool:
    """The read object nearest the square is red and hollow, its centre within a quarter of its half-side."""
    square = scene.objects[0]
    near = reading.nearest(square)
    return (near is not None and near.colour == "red" and scenes_judge.filled(near) < HOLLOW
            and ((near.cx - square.cx) ** 2 + (near.cy - square.cy) ** 2) ** 0.5 <= square.size / 4)


SUBJECTS = {
    "frame": Subject("a hollow red square (a shape outside the world)", "a {} red square", "class hollow", "refine", {}, 5.0,
                     lambda background, world: subject_photos(background=background, world=world),
                     lambda r: r.colour == "red" and r.fill < HOLLOW, _frame_placed),
    # the identifier where a colour word stands: world 2's shipped encoder carries it to the noun
    "orange": Subject("an orange square (a colour outside the world)", "a {} square", "class orange", "replace",
                      {"orange": ORANGE}, 2.0, lambda background, world: orange_photos(background=background),
                      lambda r: r.colour is not None and r.tint == "orange",
                      lambda image, reading, scene: scenes_judge.tint(
                          image, scene.background, {"orange": ORANGE},
                          box=(scene.objects[0].cx, scene.objects[0].cy, scene.objects[0].size)) == "orange"),
}


def prompts(background: str = BACKGROUND, subject: str = "frame") -> tuple[str, str, str]:
    """(the instance prompt, the class prompt, Custom Diffusion's instance prompt: its new word before the class)."""
    tail = f" on a {background} background"
    taught = SUBJECTS[subject].taught
    return taught.format(IDENTIFIER) + tail, "a red square" + tail, taught + tail


INSTANCE, CLASS, CUSTOM_INSTANCE = prompts()
SAMPLE = dict(steps=20, cfg=5.0, sampler_name="ddim", scheduler="ddim_uniform", denoise=1.0)


class Seen(NamedTuple):
    """What the judge reads of a sample: its (largest) object's colour, shape and filled fraction, and
    (world 2) the mean colour of everything not the background, named among the palette and orange
    (``scenes_judge.tint``; None on world 1)."""
    colour: str | None
    shape: str | None
    fill: float
    tint: str | None = None


def seen(image: torch.Tensor, tints: dict | None = None) -> Seen:
    """The reading of world 2's judge for its 512 px images (with ``tints``, also ``Seen.tint``), else world 1's."""
    if image.shape[-3] == S.SIZE:
        reading = scenes_judge.judge(image)
        if not reading.objects:
            return Seen(None, None, float("nan"))
        largest = reading.objects[0]
        hue = scenes_judge.tint(image, reading.background, tints) if tints else None
        return Seen(largest.colour, largest.shape, scenes_judge.filled(largest), hue)
    reading = judge(image)
    return Seen(reading.colour, reading.shape, filled(reading))


def draw(host, model, positive, negative, count: int, seed: int, side: int) -> dict:
    latent = {"samples": torch.zeros(count, 4, side, side)}
    return call(host, "KSampler", model=model, seed=seed, positive=positive, negative=negative, latent_image=latent,
                **SAMPLE)[0]


SHOWN: list = []   # (row, prompt, images): what --save writes


def readings(host, model, vae, positive, negative, count: int, seed: int, side: int, tints: dict | None = None) -> list:
    images = call(host, "VAEDecode", vae=vae, samples=draw(host, model, positive, negative, count, seed, side))[0]
    SHOWN.append(images[:8])
    return [seen(images[i], tints) for i in range(images.shape[0])]


def save_grid(path: str, rows: list[torch.Tensor]) -> None:
    """The first 8 samples of each prompt of each row, one line each, as a PNG."""
    import numpy as np
    from PIL import Image

    lines = [torch.cat(list(r) + [torch.ones_like(r[0])] * (8 - len(r)), 1) for r in rows]
    Image.fromarray((torch.cat(lines, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)).save(path)


def rate(hits) -> float:
    hits = list(hits)
    return 100.0 * sum(hits) / len(hits)


def measure(host, model, clip, vae, seeds: int, side: int, instance: str = INSTANCE,
            background: str = BACKGROUND, subject: str = "frame") -> dict:
    """The table's columns for ``model``, its samples drawn at ``side`` x ``side`` latents."""
    empty, tints = encode(host, clip, ""), SUBJECTS[subject].tints
    found_subject = readings(host, model, vae, encode(host, clip, instance), empty, seeds, 1000, side, tints)
    klass = readings(host, model, vae, encode(host, clip, prompts(background, subject)[1]), empty, seeds, 2000,
                     side, tints)
    words = []
    for i, colour in enumerate(W.COLOURS):
        if colour in (background, "red"):
            continue   # the background; red: the class itself
        found = readings(host, model, vae, encode(host, clip, f"a {colour} square on a {background} background"),
                         empty, seeds, 3000 + 100 * i, side, tints)
        words += [solid(r, colour) for r in found]
    drawn = SUBJECTS[subject].drawn
    return {
        "subject": rate(drawn(r) for r in found_subject),
        "class": rate(solid(r, "red") for r in klass),
        "class as subject": rate(drawn(r) for r in klass),
        "other colours": rate(words),
    }


def solid(reading: Seen, colour: str) -> bool:
    """A solid square of ``colour`` (and tinted that colour where the tint was read: the orange subject's
    pixels the palette reads as red or yellow)."""
    return (reading.colour == colour and reading.shape == "square" and reading.fill >= HOLLOW
            and reading.tint in (None, colour))


EDIT_STEPS = 20


def edit_photos(count: int, seed: int = 2800, background: str = BACKGROUND) -> list:
    """World 2's Custom-Edit cases: ``count`` scenes of a red square (the subject's class) and one
    other object of another colour and shape on ``background``."""
    rng = random.Random(seed)
    colours = [c for c in S.COLOURS if c not in ("red", background)]
    return [S.random_scene(rng, 2, background, ["red", rng.choice(colours)], ["square", rng.choice(["circle", "triangle"])])
            for _ in range(count)]


def custom_edit(host, model, clip, vae, scenes: list, local_blend: bool, side: int = S.SIZE,
                subject: str = "frame", cfg: float | None = None) -> dict:
    """Custom-Edit of each scene on ``model`` (the module's docstring), the photos rendered at ``side``
    px (world 2's 512; world 1's 128: two objects at world 1's sizes, in world 2's captions, which the
    one-object model never read): the rates of subject placed, other object kept, background kept and
    the whole case, and the mean PSNR outside both objects against the row's own reconstruction.
    The orange square: Prompt-to-Prompt replace ("a red square" to "a sks square": the identifier in the
    colour word's place), placed where the square's box reads orange (``scenes_judge.tint``). ``cfg``: the
    pair's guidance (default the subject's ``edit_cfg``)."""
    blend = dict(local_blend=True, blend_threshold=0.3, blend_start=0.2) if local_blend else {}
    spec = SUBJECTS[subject]
    edit = pair_edit("InvertEditAttentionInject", spec.edit_cfg if cfg is None else cfg, mode=spec.edit_mode,
                     reweight="", cross_replace=0.8, self_replace=0.4, **blend)
    empty = encode(host, clip, "")
    placed, kept, background, whole, psnrs = [], [], [], [], []
    for scene in scenes:
        image, masks = S.render(scene, side)
        source = scene.caption
        target = source.replace("a red square", spec.taught.format(IDENTIFIER))
        ctx = case_context(host, model, clip, vae, EDIT_STEPS, empty, image, source, target,
                           blend_words=("square", "square"))
        out, rec = edit(ctx)
        out_img, rec_img = decode(host, vae, out), decode(host, vae, rec)
        reading = scenes_judge.judge(out_img)
        other = scene.objects[1]
        placed.append(spec.placed(out_img, reading, scene))
        # any read object: the subject can read as the other's colour (orange pixels as yellow) and be the larger
        kept.append(any(r.matches(other) for r in reading.objects))
        background.append(reading.background == scene.background)
        whole.append(placed[-1] and kept[-1] and background[-1])
        psnrs.append(S.psnr(out_img, rec_img, ~masks.any(0)))
    return {"placed": rate(placed), "kept": rate(kept), "background": rate(background), "whole": rate(whole),
            "psnr": sum(psnrs) / len(psnrs)}


def lora_sizes(host) -> str:
    """The DreamBooth LoRA's parameters at the real SD1.5 and SDXL UNets (the host's classes, built
    on the meta device: no memory, no weights), and what training holds beside the frozen model:
    the matrices, their gradients and AdamW's two moments, float32."""
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    from workshop.benchmarks.real_size_cost import real_specs

    projections = host.pack.hostkit.lora_training.ATTENTION_PROJECTIONS
    lines = ["| UNet | adapted layers | rank | LoRA parameters | file (float32) | training state (+ grads, AdamW) |",
             "|---|---|---|---|---|---|"]
    for family, label in (("sd15", "SD1.5 (860 M)"), ("sdxl", "SDXL (2.6 G)")):
        spec, _ = real_specs(host.pack.demo.tiny_models)[family]
        with torch.device("meta"):
            unet = UNetModel(**spec.unet_config, **spec.unet_overrides, operations=comfy.ops.disable_weight_init)
        shapes = [m.weight.shape for n, m in unet.named_modules()
                  if isinstance(m, torch.nn.Linear) and any(n.endswith(f".{p}") for p in projections)]
        for rank in (4, 8, 16):
            count = sum(rank * (out + inp) for out, inp in shapes)
            lines.append(f"| {label} | {len(shapes)} | {rank} | {count:,} | {count * 4 / 2 ** 20:.1f} MiB | "
                         f"{count * 16 / 2 ** 20:.1f} MiB |")
    return "\n".join(lines)


def tiny_speed(host, steps: int = 20) -> str:
    """Training steps per second of DreamBooth LoRA (with and without the prior loss), DreamBooth
    Fine-Tune and Textual Inversion on the tiny test models (8x8 latents, batch 2), one thread: what the mechanics cost."""
    lines = ["| tiny model | DreamBooth, prior on | DreamBooth, prior off | DreamBooth + text encoder, prior on | "
             "DreamBooth Fine-Tune, prior on | Textual Inversion |", "|---|---|---|---|---|---|"]
    for family in ("sd1", "sd2-v", "sdxl"):
        model, clip, _ = host.pack.demo.tiny_models.build_tiny_models(family, seed=0)
        images = {"samples": torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))}
        cells = []
        for prior, text in ((1.0, False), (0.0, False), (1.0, True)):
            start = time.perf_counter()
            call(host, "InvertEditDreamBoothLoRA", model=model, instance_images=images,
                 instance_prompt=encode(host, clip, "a sks square"), steps=steps, learning_rate=1e-4, rank=4,
                 prior_loss_weight=prior, batch_size=2, seed=0, class_images=images,
                 class_prompt=encode(host, clip, "a square"),
                 **(dict(clip=clip, instance_text="a sks square", class_text="a square") if text else {}))
            cells.append(f"{steps / (time.perf_counter() - start):.1f}")
        start = time.perf_counter()
        call(host, "InvertEditDreamBoothFineTune", model=model, instance_images=images,
             instance_prompt=encode(host, clip, "a sks square"), steps=steps, learning_rate=5e-6, prior_loss_weight=1.0,
             batch_size=2, seed=0, class_images=images, class_prompt=encode(host, clip, "a square"))
        cells.append(f"{steps / (time.perf_counter() - start):.1f}")
        start = time.perf_counter()
        call(host, "InvertEditTextualInversion", model=model, clip=clip, images=images, name=f"speed-{family}",
             initializer="square", steps=steps, learning_rate=0.002, batch_size=2, num_vectors=1,
             templates="object", seed=0)
        cells.append(f"{steps / (time.perf_counter() - start):.1f}")
        host.pack.hostkit.learned_words.embedding_path(f"speed-{family}").unlink()   # leave no embedding behind
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--class-images", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prior-weight", type=float, default=1.0, help="lambda of the 'prior loss on' row (paper: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--custom-diffusion", action="store_true",
                        help="teach with Custom Diffusion (keys and values + the word embedding:toy-hollow-*)")
    parser.add_argument("--no-augment", action="store_true", help="Custom Diffusion without its scale augmentation")
    parser.add_argument("--full", action="store_true", help="teach with DreamBooth Fine-Tune (every UNet weight)")
    parser.add_argument("--text-encoder", action="store_true",
                        help="DreamBooth trains the text encoder too (the scripts' --train_text_encoder)")
    parser.add_argument("--background", default=BACKGROUND, choices=("white", "blue"),
                        help="the photos' and prompts' background (blue: the shipped workflows')")
    parser.add_argument("--prior-only", action="store_true", help="skip the 'prior loss off' row (a settings sweep)")
    parser.add_argument("--world", type=int, default=1, choices=(1, 2),
                        help="1: the one-object world (128 px); 2: the two-object world (512 px), with Custom-Edit")
    parser.add_argument("--edit-cases", type=int, default=20, help="world 2: Custom-Edit's photos per row")
    parser.add_argument("--edit-on-world-1", action="store_true",
                        help="world 1: Custom-Edit on two-object photos at world 1's size too (--edit-cases of them)")
    parser.add_argument("--subject", default="frame", choices=list(SUBJECTS),
                        help="frame: the hollow red square; orange (world 2): an orange square, 'a sks square'")
    parser.add_argument("--edit-cfg", type=float, default=None,
                        help="Custom-Edit's guidance (default the subject's: frame 5, orange 2)")
    parser.add_argument("--save", default=None, help="a PNG path: the first 8 samples of each prompt of each row")
    parser.add_argument("--sizes", action="store_true", help="only the LoRA's size at SD1.5 and SDXL size")
    parser.add_argument("--tiny", action="store_true", help="only the steps per second on the tiny models")
    parser.add_argument("--gpu", action="store_true",
                        help="boot the host on its default device with its default precisions (a CUDA GPU)")
    args = parser.parse_args(argv)
    if args.world != 2 and args.subject != "frame":
        parser.error("--subject orange is world 2's (--world 2)")
    torch.set_num_threads(1)
    host = boot(cpu=not args.gpu)
    if args.sizes:
        return lora_sizes(host)
    if args.tiny:
        return tiny_speed(host)
    toy = host.pack.demo.toy_model
    model, clip, vae = toy.load_toy_model(toy.WORLD_2 if args.world == 2 else toy.WORLD_1)
    empty = encode(host, clip, "")
    INSTANCE, CLASS, CUSTOM_INSTANCE = prompts(args.background, args.subject)
    subject = SUBJECTS[args.subject]
    pictures_of_subject = subject.photos(args.background, args.world)
    photos = call(host, "VAEEncode", pixels=pictures_of_subject, vae=vae)[0]
    instance_prompt, class_prompt = encode(host, clip, INSTANCE), encode(host, clip, CLASS)
    side = photos["samples"].shape[-1]
    classes = draw(host, model, class_prompt, empty, args.class_images, 7, side)
    rows = [("untouched model", model, 0.0, [], INSTANCE, clip)]
    for weight in (args.prior_weight,) if args.prior_only else (args.prior_weight, 0.0):
        start = time.perf_counter()
        if args.custom_diffusion:
            name = f"toy-hollow-{weight:g}"
            pictures = call(host, "VAEDecode", vae=vae, samples=classes)[0]
            taught, _, word, _, loss = call(
                host, "InvertEditCustomDiffusion", model=model, clip=clip, vae=vae, instance_images=pictures_of_subject,
                instance_prompt=CUSTOM_INSTANCE, name=name, initializer="ktn", steps=args.steps,
                learning_rate=args.lr, batch_size=args.batch, prior_loss_weight=weight, augment=not args.no_augment,
                hflip=True, seed=args.seed, class_images=pictures, class_prompt=CLASS)
            rows.append((f"Custom Diffusion, prior loss {f'on (lambda {weight:g})' if weight else 'off'}", taught,
                         time.perf_counter() - start, loss["loss"], CUSTOM_INSTANCE.format(word), clip))
            continue
        common = dict(model=model, instance_images=photos, instance_prompt=instance_prompt, steps=args.steps,
                      learning_rate=args.lr, prior_loss_weight=weight, batch_size=args.batch, seed=args.seed,
                      class_images=classes, class_prompt=class_prompt)
        node, label = (("InvertEditDreamBoothFineTune", "DreamBooth Fine-Tune") if args.full
                       else ("InvertEditDreamBoothLoRA", "DreamBooth LoRA"))
        text = {}
        if args.text_encoder:
            label += " + text encoder"
            text = dict(clip=clip, instance_text=INSTANCE, class_text=CLASS if weight else "")
        out = call(host, node, **common, **({} if args.full else {"rank": args.rank}), **text)
        taught, _, loss = out[:3]
        seconds = time.perf_counter() - start
        rows.append((f"{label}, prior loss {f'on (lambda {weight:g})' if weight else 'off'}", taught, seconds,
                     loss["loss"], INSTANCE, out[3] if text else clip))
    method = "Custom Diffusion" if args.custom_diffusion else "DreamBooth"
    lines = [f"### {method} on toy world {args.world}: {subject.what} taught from 4 photos",
             f"{args.steps} steps, lr {args.lr:g}, rank {args.rank}, batch {args.batch}, {args.class_images} class "
             f"images drawn by the untouched model; {args.seeds} seeds per prompt (KSampler ddim 20 steps, cfg 5); "
             + (f"{torch.cuda.get_device_name()}, the host's default precisions" if args.gpu else "one CPU thread"), "",
             f"| model | subject | class | {subject.column} | other colours | training |",
             "|---|---|---|---|---|---|"]
    for name, m, seconds, losses, instance, row_clip in rows:
        got = measure(host, m, row_clip, vae, args.seeds, side, instance, args.background, args.subject)
        train = (f"{seconds:.0f} s ({args.steps / seconds:.1f} steps/s)" if losses else "")
        lines.append(f"| {name} | {got['subject']:.0f}% | {got['class']:.0f}% | {got['class as subject']:.0f}% | "
                     f"{got['other colours']:.0f}% | {train} |")
        print(lines[-1], file=sys.stderr, flush=True)
    if (args.world == 2 or args.edit_on_world_1) and args.edit_cases and not args.custom_diffusion:
        scenes = edit_photos(args.edit_cases, background=args.background)
        cfg = subject.edit_cfg if args.edit_cfg is None else args.edit_cfg
        lines += ["", f"Custom-Edit on {len(scenes)} two-object photos (a red square and another object; Direct Inversion, "
                      f"Attention Inject {subject.edit_mode}, cross 0.8, self 0.4, {EDIT_STEPS} steps, cfg {cfg:g}):", "",
                  "| model | local blend | subject placed | other object kept | background kept | whole case | "
                  "PSNR outside vs own reconstruction |", "|---|---|---|---|---|---|---|"]
        for name, m, *_, row_clip in rows:
            for local_blend in (False, True):
                got = custom_edit(host, m, row_clip, vae, scenes, local_blend, side * 8, args.subject, cfg)
                lines.append(f"| {name} | {'on' if local_blend else 'off'} | {got['placed']:.0f}% | {got['kept']:.0f}% | "
                             f"{got['background']:.0f}% | {got['whole']:.0f}% | {got['psnr']:.1f} dB |")
                print(lines[-1], file=sys.stderr, flush=True)
    if args.save:
        save_grid(args.save, SHOWN)
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
