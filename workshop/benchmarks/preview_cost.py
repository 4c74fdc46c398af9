"""What the host's previews cost the long optimisations (issue 79), previews off against on, side by side.

    python -m workshop.benchmarks.preview_cost [--model toy-one-object|demo-sd1|...] [--steps 12] [--repeats 3]

Each optimisation (Null-Text Optimize, Imagic's two stages, DreamBooth LoRA, Textual Inversion, Custom
Diffusion) runs on the built-in model's sample image with the host's preview method off (its default), then
``latent2rgb`` (the throttled previews as shipped: the first and last step's, and at most one a
``PREVIEW_EVERY_S`` between), then ``latent2rgb`` with a picture at every step (the worst case: what the
host's samplers make), interleaved. Time is the process's CPU time (``time.process_time``, one torch
thread), the median of ``--repeats``: on a shared machine wall time swings by more than what is measured.
The pictures counted are those the host's progress bar received (its server would then encode each as a
JPEG for the browser, in its own thread; not counted). The node's set-up (model load, encodes) is in each
run alike. Last, one picture alone: the host's previewer on latents of this size and of SD1.5's and SDXL's.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

PROMPT = "a red circle on a blue background"
MODES = {"off": ("none", None), "on": ("latent2rgb", None), "every step": ("latent2rgb", 0.0)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--steps", type=int, default=12, help="optimiser steps (Null-Text: timesteps, 2 inner steps each)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    import comfy.cli_args
    import comfy.utils
    from comfy.cli_args import LatentPreviewMethod

    from workshop.headless.runner import BUILTIN_SWAPS

    progress = host.pack.hostkit.progress
    model, clip, vae = builtin_model(host, args.model)
    photo = BUILTIN_SWAPS[args.model].image
    pixels = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255.0)[None]
    latent = {"samples": call(host, "VAEEncode", pixels=pixels, vae=vae)[0]["samples"]}
    pair = {"samples": latent["samples"].repeat(2, 1, 1, 1)}
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    inversion = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=args.steps,
                     scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]
    steps = args.steps
    runs = {
        "Null-Text Optimize": lambda: call(host, "InvertEditNullTextOptimize", model=model, inversion=inversion,
                                           positive=pos, negative=neg, cfg=7.5, inner_steps=2, learning_rate=0.01,
                                           early_stop=False),
        "Imagic Optimize Embedding": lambda: call(host, "InvertEditImagicOptimizeEmbedding", model=model, latent=latent,
                                                  target=pos, steps=steps, learning_rate=0.001, seed=0),
        "Imagic Fine-Tune": lambda: call(host, "InvertEditImagicFineTune", model=model, latent=latent, optimized=pos,
                                         steps=steps, learning_rate=0.0001, rank=2, seed=0),
        "DreamBooth LoRA": lambda: call(host, "InvertEditDreamBoothLoRA", model=model, instance_images=pair,
                                        instance_prompt=pos, steps=steps, learning_rate=0.0001, rank=2,
                                        prior_loss_weight=1.0, batch_size=1, seed=0, class_images=latent,
                                        class_prompt=neg),
        "Textual Inversion": lambda: call(host, "InvertEditTextualInversion", model=model, clip=clip, images=pair,
                                          name="preview-cost-ti", initializer="square", steps=steps,
                                          learning_rate=0.001, batch_size=1, num_vectors=1, templates="object", seed=0),
        "Custom Diffusion": lambda: call(host, "InvertEditCustomDiffusion", model=model, clip=clip, vae=vae,
                                         instance_images=pixels.repeat(2, 1, 1, 1),
                                         instance_prompt="photo of a {} circle", name="preview-cost-cd",
                                         initializer="ktn", steps=steps, learning_rate=0.0001, batch_size=1,
                                         prior_loss_weight=1.0, augment=True, hflip=True, seed=0,
                                         class_images=pixels, class_prompt="circle"),
    }
    pictures: dict = {}

    def hook(value, total, preview, node_id=None):
        pictures["steps"] = total
        if preview is not None:
            pictures["n"] += 1

    method, every = comfy.cli_args.args.preview_method, progress.PREVIEW_EVERY_S
    hook_before = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(hook)
    times = {(run, mode): [] for run in runs for mode in MODES}
    counts = {}
    try:
        for run, go in runs.items():
            go()   # warm-up: the host's first load and the libraries' lazy set-up
            for _ in range(args.repeats):
                for mode, (preview, every_s) in MODES.items():
                    comfy.cli_args.args.preview_method = LatentPreviewMethod(preview)
                    progress.PREVIEW_EVERY_S = every if every_s is None else every_s
                    pictures["n"] = 0
                    t0 = time.process_time()
                    go()
                    times[run, mode].append(time.process_time() - t0)
                    counts[run, mode] = pictures["n"]
                    counts[run] = pictures["steps"]
    finally:
        comfy.cli_args.args.preview_method, progress.PREVIEW_EVERY_S = method, every
        comfy.utils.set_progress_bar_global_hook(hook_before)

    # one picture alone: the host's latent2rgb previewer on this latent (what each preview adds)
    import latent_preview

    comfy.cli_args.args.preview_method = LatentPreviewMethod("latent2rgb")
    try:
        previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)
    finally:
        comfy.cli_args.args.preview_method = method
    alone = {}
    for side in (latent["samples"].shape[-1], 64, 128):   # this latent's; SD1.5 at 512 px; SDXL at 1024 px
        x0 = torch.randn(1, latent["samples"].shape[1], side, side, generator=torch.Generator().manual_seed(0))
        t0 = time.process_time()
        for _ in range(50):
            previewer.decode_latent_to_preview_image("JPEG", x0)
        alone[side] = (time.process_time() - t0) / 50

    size = tuple(latent["samples"].shape[-2:])
    print(f"\n### Previews' cost, model '{args.model}' ({size[0]}x{size[1]} latent), --steps {steps}, latent2rgb, "
          f"CPU time (1 torch thread), median of {args.repeats} interleaved runs\n")
    print("| optimisation | steps | off (CPU s) | on (CPU s) | on / off | pictures | every step (CPU s) "
          "| every step / off | pictures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        off, on, each = (statistics.median(times[run, mode]) for mode in MODES)
        print(f"| {run} | {counts[run]} | {off:.3f} | {on:.3f} | {on / off:.3f} | {counts[run, 'on']} | {each:.3f} "
              f"| {each / off:.3f} | {counts[run, 'every step']} |")
    print("\nOne latent2rgb picture alone (the host's previewer, on the CPU): " + ", ".join(
        f"{side}x{side} latent {t * 1000:.2f} ms" for side, t in alone.items()) + ".")


if __name__ == "__main__":
    main()
