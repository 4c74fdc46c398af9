"""The toy world (issue 3): rendering, captions, edit cases and the exact judge, without the host."""
from __future__ import annotations

import random

import pytest
import torch

from workshop.toyworld import judge as J
from workshop.toyworld import world as W


def test_captions_are_template_and_parse_back():
    caps = W.all_captions()
    assert len(caps) == len(W.COLOURS) * (len(W.COLOURS) - 1) * len(W.SHAPES)
    assert len(set(caps)) == len(caps)
    for c in caps:
        colour, shape, bg = W.parse_caption(c)
        assert W.caption(colour, shape, bg) == c and colour != bg
    with pytest.raises(ValueError):
        W.parse_caption("a photo of a cat")


def test_render_is_exact_and_deterministic():
    s = W.Scene("blue", "red", "square", cx=64.0, cy=64.0, size=20.0)
    img, mask = W.render(s)
    assert img.shape == (W.SIZE, W.SIZE, 3) and mask.shape == (W.SIZE, W.SIZE)
    assert int(mask.sum()) == 40 * 40  # the square [44, 84)^2 exactly
    assert torch.allclose(img[64, 64], W.rgb("red")) and torch.allclose(img[0, 0], W.rgb("blue"))
    img2, _ = W.render(s)
    assert torch.equal(img, img2)
    # shapes in the same box: square > circle > triangle in area
    areas = {sh: int(W.render(W.Scene("blue", "red", sh, 64.0, 64.0, 20.0))[1].sum()) for sh in W.SHAPES}
    assert areas["square"] > areas["circle"] > areas["triangle"] > 0


def test_random_scenes_stay_inside():
    rng = random.Random(0)
    for _ in range(200):
        s = W.random_scene(rng)
        assert s.colour != s.background
        assert s.size + W.MARGIN <= s.cx <= W.SIZE - s.size - W.MARGIN
        assert s.size + W.MARGIN <= s.cy <= W.SIZE - s.size - W.MARGIN


def test_judge_reads_rendered_scenes_exactly():
    rng = random.Random(1)
    for _ in range(60):
        s = W.random_scene(rng)
        img, mask = W.render(s)
        r = J.judge(img)
        assert (r.background, r.colour, r.shape) == (s.background, s.colour, s.shape)
        assert r.same_structure(s, pos_tol=2.0, size_tol=0.06)
        iou = float((r.mask & mask).sum()) / float((r.mask | mask).sum())
        assert iou > 0.9


@pytest.mark.parametrize("shape", ["square", "circle", "triangle"])
def test_judge_reads_a_shape_drawn_taller_than_wide_as_that_shape(shape):
    """A generated square is often a little taller than wide: at 20 x 26 px half-extents the square
    template at the longer side overlaps it less (IoU 0.77) than the circle does (0.79), so fitting the
    templates at the longer side read such squares as circles (measured on the toy model's own samples:
    docs/measurements.md). Stretched to the box, each shape reads as itself, squashed either way."""
    for half_h in (26.0, 16.0):
        cov = W.coverage(shape, 60.0, 64.0, 20.0, height=half_h)
        img = W.rgb("white") * (1 - cov[..., None]) + W.rgb("red") * cov[..., None]
        r = J.judge(img)
        assert (r.colour, r.shape) == ("red", shape), (half_h, r.shape, r.shape_iou)
        assert r.shape_iou > 0.9


def test_judge_handles_no_object_and_noise():
    flat = W.rgb("green").expand(W.SIZE, W.SIZE, 3).clone()
    r = J.judge(flat)
    assert r.background == "green" and r.colour is None and r.shape is None
    assert not r.same_structure(W.Scene("green", "red", "circle", 64, 64, 20))
    s = W.Scene("white", "blue", "triangle", 50.0, 70.0, 25.0)
    img, _ = W.render(s)
    noisy = (img + 0.05 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    r = J.judge(noisy[None])
    assert (r.background, r.colour, r.shape) == ("white", "blue", "triangle")


def test_edit_cases_change_exactly_one_attribute_and_keep_token_count():
    cases = W.edit_cases(60, seed=0)
    assert len(cases) == 60 and {c.kind for c in cases} == set(W.EDIT_KINDS)
    assert cases == W.edit_cases(60, seed=0)
    for c in cases:
        a, b = c.source, c.target
        changed = [k for k in ("colour", "shape", "background") if getattr(a, k) != getattr(b, k)]
        assert changed == [c.kind]
        assert (a.cx, a.cy, a.size) == (b.cx, b.cy, b.size)
        assert b.colour != b.background
        assert len(c.source_caption.split()) == len(c.target_caption.split())


def test_psnr():
    a = torch.zeros(4, 4, 3)
    assert W.psnr(a, a) == float("inf")
    assert abs(W.psnr(a, a + 0.1) - 20.0) < 1e-4
    m = torch.zeros(4, 4, dtype=torch.bool)
    m[0, 0] = True
    b = a.clone()
    b[1:, :] = 1.0
    assert W.psnr(a, b, m) == float("inf")


def test_autoencoder_shapes_and_calibration():
    from invertedit.demo.toy_autoencoder import SD1_SCALE, ToyAutoencoder
    torch.manual_seed(0)
    ae = ToyAutoencoder()
    x = W.render_batch([W.random_scene(random.Random(i)) for i in range(4)]).movedim(-1, 1) * 2 - 1
    with torch.no_grad():
        ae.calibrate(x)
        z = ae.encode(x)
        assert z.shape == (4, 4, 16, 16)
        s = z * SD1_SCALE
        assert s.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (s.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
        assert ae.decode(z).shape == x.shape


def test_committed_weights_and_config():
    import json
    from pathlib import Path
    d = Path(W.__file__).resolve().parents[2] / "models" / "toyworld"
    config = json.loads((d / "config.json").read_text())
    assert config["world"]["colours"] == list(W.COLOURS) and config["world"]["shapes"] == list(W.SHAPES)
    files = ["toy_unet.safetensors", "toy_vae.safetensors", "toy_clip.safetensors", "config.json", "sample.png"]
    assert all((d / f).is_file() for f in files)
    assert sum((d / f).stat().st_size for f in files) < 20 * 2 ** 20
