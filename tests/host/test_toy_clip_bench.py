"""The toy clip benchmark (issue 82, ``python -m workshop.benchmarks.toyworld2_clips``): the bundled clip
through the stock Load Image, and one tiny end-to-end row."""
from __future__ import annotations

import argparse

import torch

from workshop.headless.calls import call
from workshop.toyworld import clips as C


def test_stock_load_image_loads_the_bundled_clip_as_a_batch_of_eight(host):
    """The pack supplies assets/toy_clip_two_objects.png to the input folder; the stock node stacks its
    8 frames into one IMAGE batch, exactly the world's render (8-bit)."""
    image, mask = call(host, "LoadImage", image=C.CLIP_ASSET)
    assert image.shape == (8, 512, 512, 3) and mask.shape[0] == 8
    expected = torch.from_numpy(C.to_uint8(C.render_clip(C.SAMPLE_CLIP.scenes())[0])).float() / 255
    assert torch.equal(image, expected)


def test_frame_by_frame_row_on_two_tiny_clips(host):
    """2 clips x 3 frames, 3 DDIM steps: the frame-by-frame row runs as one batched run of the clip
    and the benchmark's table names its sizes; the VAE round trip reads as the source clip."""
    from workshop.benchmarks import toyworld2_clips as B

    args = argparse.Namespace(clips=2, frames=3, steps=3, cfg=5.0, flow_steps=3, rows="Frame by frame", seed=0,
                              save=None)
    res = B.run_clips(host, args)
    assert [c["kind"] for c in res["cases"]] == ["colour", "shape"]
    row = next(n for n in res["rows"] if n.startswith("Frame by frame"))
    for c in res["cases"]:
        assert c["how"][row] == "one batched run"
        m = c["rows"][row]
        assert len(m["readings"]) == 3 and 0.0 <= m["success"] <= 1.0 and m["flicker"] >= 0.0
        vae = c["rows"][B.VAE_ROW["sd"]]
        assert vae["all_frames"] == 1.0 and vae["consistent"] == 1.0 and vae["flicker"] < 1.0
    text = B.table(res)
    assert "2 clips x 3 frames" in text and "| Frame by frame" in text
