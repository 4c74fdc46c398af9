"""Self-Guidance's properties and energy (Epstein, Jabri, Poole, Efros, Holynski, "Diffusion
Self-Guidance for Controllable Image Generation", NeurIPS 2023, Sec. 3), as pure functions.

An object is named by a word of the prompt; its cross-attention map ``A`` (mean over the heads and
the layers read, and over the word's tokens) and the decoder's features ``Psi`` give it:

- ``centroid(A)``: the attention-weighted mean of the cells' coordinates, ``(x, y)`` in [0, 1]
  (cell centres, x to the right, y down) -- its position;
- ``shape(A)``: the map thresholded softly: min-max normalised, ``sigmoid(sharpness * (A - 0.5))``,
  normalised again (``SHARPNESS`` 10);
- ``size(A)``: the mean of its shape over the cells (the share of the picture it covers);
- ``appearance(shape, Psi)``: the shape-weighted mean of the features, one vector per object
  (the shape resampled to the features' grid).

An edit is an energy ``g`` of the edited sample's properties against targets made from the
source's (``targets``: the moved object's centroid moved by the offset, its size times the area
factor ``scale ** 2``; every kept word's shape and appearance as they were), a weighted sum of L1
terms (``energy``). Sampling adds ``v * sigma_t * grad_z g`` to the guided noise prediction
(``guided_denoised`` writes it for the host's sampler state). Maps are ``[K, h, w]`` (K objects),
features ``[C, H, W]``; everything is float32 (callers upcast).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Sharpness of the soft threshold of ``shape`` (see the faithfulness notes: not in the paper's text we
#: could read; the public reimplementation Sainzerjj/Free-Guidance-Diffusion uses 10 for size, 20 for shape).
SHARPNESS = 10.0
EPS = 1e-8


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each map of ``[..., h, w]`` min-max normalised over its cells to [0, 1]."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo + EPS)


def shape(maps: torch.Tensor, sharpness: float = SHARPNESS) -> torch.Tensor:
    """The soft-thresholded map: ``normalise(sigmoid(sharpness * (normalise(A) - 0.5)))``."""
    return normalise(torch.sigmoid(sharpness * (normalise(maps) - 0.5)))


def size(maps: torch.Tensor, sharpness: float = SHARPNESS) -> torch.Tensor:
    """``[...]``: the mean of each map's shape over its cells."""
    return shape(maps, sharpness).mean(dim=(-2, -1))


def grid(h: int, w: int, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The cells' centres ``(x [1, w], y [h, 1])`` in [0, 1] coordinates."""
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    return xs[None, :], ys[:, None]


def centroid(maps: torch.Tensor) -> torch.Tensor:
    """``[..., 2]``: each map's attention-weighted mean cell centre ``(x, y)`` in [0, 1]."""
    h, w = maps.shape[-2:]
    xs, ys = grid(h, w, maps.device, maps.dtype)
    total = maps.sum(dim=(-2, -1)) + EPS
    return torch.stack([(maps * xs).sum(dim=(-2, -1)) / total, (maps * ys).sum(dim=(-2, -1)) / total], dim=-1)


def appearance(shapes: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``[K, C]``: the shape-weighted mean of ``features [C, H, W]`` for each of ``shapes [K, h, w]``
    (resampled bilinearly to the features' grid)."""
    if shapes.shape[-2:] != features.shape[-2:]:
        shapes = F.interpolate(shapes[None], size=features.shape[-2:], mode="bilinear", align_corners=False)[0]
    weighted = torch.einsum("khw,chw->kc", shapes, features)
    return weighted / (shapes.sum(dim=(-2, -1))[:, None] + EPS)


def moved(maps: torch.Tensor, centre: torch.Tensor, offset: torch.Tensor, scale: float) -> torch.Tensor:
    """``maps [K, h, w]`` moved by ``offset [2]`` and scaled by ``scale`` about ``centre [2]`` (both in [0, 1]
    coordinates; bilinear, zeros outside): the target of the moved object's shape term."""
    k, h, w = maps.shape
    xs, ys = grid(h, w, maps.device, maps.dtype)
    # an output cell at p reads the input at (p - centre - offset) / scale + centre
    sx = (xs - centre[0] - offset[0]) / scale + centre[0]
    sy = (ys - centre[1] - offset[1]) / scale + centre[1]
    sample = torch.stack(torch.broadcast_tensors(sx * 2 - 1, sy * 2 - 1), dim=-1)
    return F.grid_sample(maps[:, None], sample[None].expand(k, -1, -1, -1), mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


@dataclass(frozen=True)
class Weights:
    """The energy's weights: the moved object's position, size, appearance and (optional) moved shape,
    and every kept word's shape and appearance."""
    position: float
    size: float
    appearance: float
    shape: float
    moved_shape: float = 0.0


@dataclass(frozen=True)
class Properties:
    """One sample's properties at one step: the moved object (index 0 of ``maps``) and the kept words."""
    centroid: torch.Tensor     # [2], the object's
    size: torch.Tensor         # [], the object's
    shapes: torch.Tensor       # [K, h, w]: object first, then the kept words
    appearance: torch.Tensor   # [K, C] (an empty [K, 0] without features)


def properties(maps: torch.Tensor, features: torch.Tensor | None, sharpness: float = SHARPNESS) -> Properties:
    """The properties of ``maps [K, h, w]`` (the moved object first) and ``features [C, H, W]``."""
    shapes = shape(maps, sharpness)
    looks = appearance(shapes, features) if features is not None else maps.new_zeros(maps.shape[0], 0)
    return Properties(centroid(maps[0]), shapes[0].mean(), shapes, looks)


@dataclass(frozen=True)
class Targets:
    """What the edited sample's properties are pulled towards at one step."""
    centroid: torch.Tensor     # [2]
    size: torch.Tensor         # []
    shapes: torch.Tensor       # [K, h, w]: the object's (moved; used by the moved-shape term) then the kept words'
    appearance: torch.Tensor   # [K, C]


def targets(source: Properties, offset: torch.Tensor, scale: float) -> Targets:
    """The targets of a move by ``offset [2]`` ([0, 1] coordinates: pixels / the image's side) and a
    resize by ``scale`` (linear; the size, an area, by ``scale ** 2``), from the source's properties."""
    centre = source.centroid
    shapes = torch.cat([moved(source.shapes[:1], centre, offset, scale), source.shapes[1:]])
    return Targets(centre + offset, source.size * scale ** 2, shapes, source.appearance)


def terms(edit: Properties, target: Targets) -> dict[str, torch.Tensor]:
    """Each L1 term of the energy (unweighted): ``position`` |centroid - target|_1 (x and y summed),
    ``size`` |size - target|, ``appearance`` the mean over objects and channels of |appearance -
    target| (the object and the kept words), ``shape`` the mean over kept words and cells of |shape -
    source shape| (0 without kept words), ``moved_shape`` the mean over cells of |shape - moved source
    shape| of the object."""
    zero = edit.size * 0
    kept = edit.shapes.shape[0] > 1
    return {
        "position": (edit.centroid - target.centroid).abs().sum(),
        "size": (edit.size - target.size).abs(),
        "appearance": (edit.appearance - target.appearance).abs().mean() if edit.appearance.numel() else zero,
        "shape": (edit.shapes[1:] - target.shapes[1:]).abs().mean() if kept else zero,
        "moved_shape": (edit.shapes[0] - target.shapes[0]).abs().mean(),
    }


def energy(edit: Properties, target: Targets, weights: Weights) -> torch.Tensor:
    """``g``: the weighted sum of ``terms``."""
    parts = terms(edit, target)
    return sum(getattr(weights, name) * value for name, value in parts.items())


def guided_denoised(denoised: torch.Tensor, grad_x: torch.Tensor, sigma: torch.Tensor, amount: float) -> torch.Tensor:
    """The paper's ``eps~ = eps_cfg + v sigma_t grad_z g`` in the host's sampler state ``x = x0 + sigma eps``
    (``z = x / sqrt(1 + sigma^2)``, ``sigma_t = sigma / sqrt(1 + sigma^2)``, so ``sigma_t grad_z g = sigma
    grad_x g``): the denoised prediction ``x - sigma eps~ = denoised - v sigma^2 grad_x g``."""
    return denoised - amount * sigma ** 2 * grad_x


def image_offset(dx: float, dy: float, width: int, height: int) -> tuple[float, float]:
    """An offset in image pixels as a fraction of the picture (the maps' [0, 1] coordinates)."""
    return dx / width, dy / height
