#!/usr/bin/env python
"""Write assets/sample.png: the pack's bundled sample image (a red circle on a blue background).

128 x 128 RGB, drawn with PIL only, byte-for-byte deterministic (no metadata, fixed
compression), so re-running it leaves the committed file unchanged.

    python scripts/make_sample_image.py [--out assets/sample.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128
BACKGROUND = (40, 70, 170)
CIRCLE = (210, 40, 40)


def make_sample_image(size: int = SIZE) -> Image.Image:
    # Drawn at 4x and reduced, for a smooth (but still deterministic) edge.
    big = Image.new("RGB", (size * 4, size * 4), BACKGROUND)
    draw = ImageDraw.Draw(big)
    r = size * 4 * 0.3
    c = size * 4 / 2
    draw.ellipse([c - r, c - r, c + r, c + r], fill=CIRCLE)
    return big.resize((size, size), Image.Resampling.BOX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "sample.png")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_sample_image().save(args.out, format="PNG", optimize=False, compress_level=9)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
