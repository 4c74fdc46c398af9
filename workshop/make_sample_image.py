#!/usr/bin/env python
"""Write assets/sample.png: the pack's bundled sample image, a 512 px scene of the toy world the
built-in Toy World Model (two objects) was trained on ("a red circle and a blue square on a green
background", ``toyworld.scenes.SAMPLE``), rendered by ``toyworld.scenes`` so its colours are the
world's palette. PNG without metadata
at a fixed compression: re-running it leaves the committed file unchanged.

    python -m workshop.make_sample_image [--out assets/sample.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

from workshop.toyworld.scenes import SAMPLE, render


def make_sample_image() -> Image.Image:
    image, _ = render(SAMPLE)
    return Image.fromarray((image.numpy() * 255).round().astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "sample.png")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_sample_image().save(args.out, format="PNG", optimize=False, compress_level=9)
    print(f"wrote {args.out} ({SAMPLE.caption})")


if __name__ == "__main__":
    main()
