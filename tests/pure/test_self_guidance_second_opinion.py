"""A second opinion on Self-Guidance's properties: the public reimplementation Sainzerjj/Free-Guidance-Diffusion
("inspired by" the paper, for SD1.5 with diffusers; the authors released no code). Its property functions
(``utils/guidance_functions.py``: ``threshold_attention``, ``get_size``, ``get_centroid``, with ``normalize`` of
``utils/functions.py``) are read from the mirror the fetch tool left (``/work/.mirror/Sainzerjj+Free-Guidance-Diffusion``)
and run unchanged on the same maps as ``terms.py``; absent, the test skips loudly.

What is compared, and the conventions that differ on purpose (docs/faithfulness.md): its soft threshold is ours
(``normalise, sigmoid(s (A - 0.5)), normalise``; it normalises over the whole tensor, so one map at a time); its size
is the thresholded map's mean (ours); its centroid is in cell indices (0 .. w - 1), ours in [0, 1] at cell centres,
so ``theirs = ours * (w, h) - 0.5``. Its energies (signed means, L2 for shapes, ``1 - alphabar`` as sigma_t) are
not the paper's and are not compared."""
from __future__ import annotations

import ast

import pytest
import torch

from invertedit.techniques.self_guidance import terms as T

REPO = "Sainzerjj/Free-Guidance-Diffusion"
FILES = ("utils/guidance_functions.py", "utils/functions.py")


def _functions(path, names: tuple[str, ...]) -> str:
    """The source of the module-level functions ``names`` of the file at ``path``, as written."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    return "\n\n".join(ast.get_source_segment(text, node) for node in tree.body
                       if isinstance(node, ast.FunctionDef) and node.name in names)


@pytest.fixture(scope="module")
def theirs(reference_copy, tmp_path_factory, skip_loudly):
    pytest.importorskip("einops")
    checkout = reference_copy(tmp_path_factory.mktemp("free-guidance"), "FREE_GUIDANCE", REPO, FILES, FILES[0])
    if checkout is None:
        skip_loudly(f"Self-Guidance second opinion: {REPO} is not mirrored (fetch github:{REPO})")
    from einops import rearrange

    scope = {"torch": torch, "tensor": torch.tensor, "rearrange": rearrange}
    exec(_functions(checkout / FILES[1], ("normalize",)), scope)   # noqa: S102 (the reference's own code, unchanged)
    exec(_functions(checkout / FILES[0], ("threshold_attention", "get_size", "get_centroid")), scope)  # noqa: S102
    return scope


def _maps(seed: int, side: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    cx, cy = (torch.rand(2, generator=g) * (side - 4) + 2).tolist()
    blob = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0)
    return blob + 0.05 * torch.rand(side, side, generator=g)


@pytest.mark.parametrize("seed", range(4))
def test_shape_size_and_centroid_agree_with_the_reimplementation(theirs, seed):
    side = 16
    a = _maps(seed, side)
    attn = a.reshape(1, side * side, 1)   # theirs: [heads, cells, tokens]
    for s in (10.0, 20.0):
        shape = theirs["threshold_attention"](attn, s).reshape(side, side)
        assert torch.allclose(shape, T.shape(a, s), atol=1e-6)
    assert torch.allclose(theirs["get_size"](attn), T.size(a) * 1.0, atol=1e-6)   # their 1/cells x sum: our mean
    centroid = theirs["get_centroid"](attn)[:, 0]
    assert torch.allclose(centroid, T.centroid(a) * side - 0.5, atol=1e-4)
