"""The toy view-set benchmark (issue 83, ``python -m workshop.benchmarks.toyworld2_views``): the bundled
view set through the stock Load Image, and one tiny end-to-end run of its SD rows."""
from __future__ import annotations

import argparse

import torch

from workshop.headless.calls import call
from workshop.toyworld import views as V
from workshop.toyworld.clips import to_uint8


def test_stock_load_image_loads_the_bundled_view_set_as_a_batch_of_four(host):
    """The pack supplies assets/toy_views_two_objects.png to the input folder; the stock node stacks its
    4 views into one IMAGE batch, exactly the world's render (8-bit)."""
    image, mask = call(host, "LoadImage", image=V.VIEWS_ASSET)
    assert image.shape == (4, 512, 512, 3) and mask.shape[0] == 4
    expected = torch.from_numpy(to_uint8(V.render_views(V.SAMPLE_VIEWS)[0])).float() / 255
    assert torch.equal(image, expected)


def test_view_by_view_and_cross_view_rows_on_a_tiny_view_set(host):
    """1 view set x 2 views, 2 DDIM steps: the view-by-view row and Cross-View Attention's (GaussCtrl's
    mean) run as one batched run each, the VAE round trip reads as the source views, and the cost count
    puts Cross-View above the plain pair editor, both against stock's 1.00."""
    from workshop.benchmarks import toyworld2_views as B

    args = argparse.Namespace(sets=1, views=2, vertical=V.VERTICAL, steps=2, cfg=5.0, flow_steps=2,
                              rows="View by view,GaussCtrl", seed=0, save=None, cost_steps=2)
    res = B.run_views(host, args)
    assert [c["kind"] for c in res["cases"]] == ["colour"] and not res["skipped"]
    (case,) = res["cases"]
    vae = case["rows"][B.VAE_ROW["sd"]]
    assert vae["success"] == 1.0 and vae["agreement"] == 1.0 and len(vae["per_frame"]["success"]) == 2
    for name in res["rows"][1:]:
        assert case["how"][name] == "one batched run" and 0.0 <= case["rows"][name]["agreeing"] <= 1.0
    assert len(res["rows"]) == 3
    assert 0.9 < res["cost"]["p2p"] < res["cost"]["p2p+mean"]
    text = B.table(res)
    assert "1 view sets x 2 views" in text and "| View by view" in text
