#!/usr/bin/env python
"""Write the pack's bundled sample images, one scene of each toy world its Toy World Model was
trained on, rendered by the world's own code so their colours are the world's palette:

- ``assets/sample.png``: world 1, 128 px, "a red circle on a blue background", centred (the
  workflows' source image);
- ``assets/sample_two_objects.png``: world 2, 512 px, "a red circle and a blue square on a green
  background" (``toyworld.scenes.SAMPLE``);
- ``assets/sample_flow.png``: the same scene at 256 px, the toy flow world's size.

PNG without metadata at a fixed compression: re-running it leaves the committed files unchanged.

    python -m workshop.make_sample_image [--out assets/]
"""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

from invertedit.demo.worlds import WORLD_1, WORLD_2, WORLD_FLOW, WORLDS
from workshop.toyworld import scenes, world

SAMPLE_1 = world.Scene(background="blue", colour="red", shape="circle", cx=world.SIZE / 2, cy=world.SIZE / 2, size=28.0)
SAMPLES = {WORLDS[WORLD_1].sample: (world.render, SAMPLE_1), WORLDS[WORLD_2].sample: (scenes.render, scenes.SAMPLE),
           WORLDS[WORLD_FLOW].sample: (partial(scenes.render, res=WORLDS[WORLD_FLOW].size), scenes.SAMPLE)}


def make_sample_image(name: str = WORLDS[WORLD_1].sample) -> Image.Image:
    render, scene = SAMPLES[name]
    image, _ = render(scene)
    return Image.fromarray((image.numpy() * 255).round().astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (_, scene) in SAMPLES.items():
        make_sample_image(name).save(args.out / name, format="PNG", optimize=False, compress_level=9)
        print(f"wrote {args.out / name} ({scene.caption})")


if __name__ == "__main__":
    main()
