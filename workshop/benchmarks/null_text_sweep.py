"""Null-Text Optimize's cost against its reconstruction: inner steps, learning rate and early
stopping swept on the Toy World Model (the sample image, 50 steps, cfg 7.5, empty negative).

    python -m workshop.benchmarks.null_text_sweep [INNER/LR/EARLY[/source] ...]   e.g. 3/0.03/True

Backward passes are Null-Text Optimize's own count; PSNR is of the decoded reconstruction
against the VAE round trip (latent terms) and against the image. The first two rows are the
paper's recipe (10 inner steps, lr 0.01) without and with its early stop; ``/source`` starts from
the source prompt's embedding (the node's ``start_from`` "source prompt (faster)").
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from PIL import Image

from workshop.benchmarks.inversions import SAMPLE, SOURCE, ksampler, psnr
from workshop.headless.boot import boot
from workshop.headless.calls import builtin_model, call, encode

SETTINGS = ["10/0.01/False", "10/0.01/True", "10/0.03/True", "10/0.1/True", "5/0.05/True", "3/0.03/True", "2/0.1/True",
            "10/0.01/False/source", "10/0.01/True/source", "2/0.01/True/source"]
START = {"": "negative (paper)", "source": "source prompt (faster)"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("settings", nargs="*", default=SETTINGS, help="INNER/LR/EARLY_STOP[/source]")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    model, clip, vae = builtin_model(host, "toy-one-object")
    image = torch.from_numpy(np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float32) / 255.0)[None]
    src = call(host, "VAEEncode", pixels=image, vae=vae)[0]
    roundtrip = call(host, "VAEDecode", samples=src, vae=vae)[0]
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    steps, cfg = 50, 7.5
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=steps,
                       scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    print("\n| start from | inner steps | learning rate | early stop | backward passes | PSNR vs VAE round trip (dB) | "
          "PSNR vs image (dB) |")
    print("|---|---|---|---|---|---|---|")
    for setting in args.settings:
        inner, lr, early, start = (setting.split("/") + [""])[:4]
        nt = call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=pos, negative=neg, cfg=cfg,
                  inner_steps=int(inner), learning_rate=float(lr), early_stop=early == "True", start_from=START[start])[0]
        out = ksampler(host, call(host, "InvertEditApplyInversion", model=model, inversion=nt)[0], lat, pos, neg, steps, cfg)
        decoded = call(host, "VAEDecode", samples=out, vae=vae)[0]
        print(f"| {START[start]} | {inner} | {lr} | {early} | {nt.settings['null_text']['unet_backward']} | "
              f"{psnr(decoded, roundtrip):.2f} | {psnr(decoded, image):.2f} |", flush=True)


if __name__ == "__main__":
    main()
