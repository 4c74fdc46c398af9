"""DragDiffusion's optimisation of the latent (Shi et al., "DragDiffusion: Harnessing Diffusion Models for
Interactive Point-Based Image Editing", CVPR 2024), as the authors' code does it (Yujun-Shi/DragDiffusion,
``utils/drag_utils.py``: ``drag_diffusion_update``, ``point_tracking``, ``check_handle_reach_target``,
``interpolate_feature_patch``; read, not copied). torch only.

What the code does, and these functions reproduce:

- **Where.** The image is inverted by DDIM to step ``round(0.7 * 50)`` = 35 of 50 (timestep 681 of SD's 1000);
  the latent ``z_t`` there is optimised. The supervision grid is half the image (``sup_res = int(0.5 * H),
  int(0.5 * W)``: 256 x 256 for 512 px); points are in that grid as (row, column), rounded
  (``supervision_points``). Features: the output of the UNet decoder's up-block ``unet_feature_idx`` (default
  3: the third up block of SD1.5's four, 640 channels at the latent's size), bilinearly resized to the grid
  (``supervision_features``).
- **Motion supervision** (``motion_loss``): for each handle ``p`` not within 2 grid pixels of its target
  ``t``, the direction ``d = (t - p) / |t - p|``; the square patch of side ``2 r_m + 1`` about ``p`` (clipped to
  the grid), detached, against the same patch moved by ``d`` and sampled bilinearly (``shifted_patch``): the
  mean absolute difference times ``(2 r_m + 1)^2``, summed over handles.
- **The mask term** (``mask_loss``): with an editable region (the user's mask, nearest-resized to the latent),
  ``lam * sum |(x_prev - x_prev_0) * (1 - mask)|``, where ``x_prev`` is the one DDIM step from ``z_t`` the
  current prediction gives (``ddim_prev``) and ``x_prev_0`` the step the original latent gave. (The code's
  term is on the step's result, not on ``z_t`` itself, whose version it keeps as a comment.) No region: no
  term.
- **Point tracking** (``track_points``): each handle moves to the grid pixel, within ``r_p`` of where it is
  (clipped), whose current feature is nearest (L1 over channels) to the original feature at the handle's
  starting point.
- **The loop** (``glue.drag``): ``n_pix_step`` Adam steps (lr 0.01) on ``z_t``; at every step after the first,
  tracking before the loss; the loop stops as soon as every handle is within 2 grid pixels of its target
  (``reached``), before that step's update.

One difference, at the grid's border: the code's patch slicing runs off the feature map where a handle
sits within ``r_m + 1`` pixels of the border and moves outwards (negative start indices wrap, slices come out
short and the sum fails); ``shifted_patch`` clamps the sampled cells to the map instead (the border's
feature repeated). Inside, the two are the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Grid = list[list[float]]   # points as [row, column] in the supervision grid, as the code keeps them


@dataclass(frozen=True)
class DragSettings:
    """The code's defaults (``utils/ui_utils.py``'s ``run_drag`` and ``drag_ui.py``'s widgets)."""
    n_pix_step: int = 80          # optimisation steps of the latent
    lr: float = 0.01              # Adam's learning rate on z_t ("latent lr")
    r_m: int = 1                  # motion supervision's patch radius (grid pixels)
    r_p: int = 3                  # point tracking's search radius (grid pixels)
    lam: float = 0.1              # the mask term's weight
    feature_idx: int = 3          # unet_feature_idx: 0 the middle block, k the k-th up block's output
    reach: float = 2.0            # the stop test's distance (grid pixels)


def supervision_size(height: int, width: int) -> tuple[int, int]:
    """The supervision grid for an image of ``height`` x ``width`` px: half its size (``int(0.5 * H)``)."""
    return int(0.5 * height), int(0.5 * width)


def supervision_points(pairs: list, height: int, width: int) -> tuple[Grid, Grid]:
    """(handles, targets) in the grid, as [row, column] rounded to whole grid pixels, from handle -> target
    pairs in image pixels ``((x, y), (x, y))``."""
    sup_h, sup_w = supervision_size(height, width)
    handles, targets = [], []
    for (hx, hy), (tx, ty) in pairs:
        handles.append([float(round(hy / height * sup_h)), float(round(hx / width * sup_w))])
        targets.append([float(round(ty / height * sup_h)), float(round(tx / width * sup_w))])
    return handles, targets


def image_points(points: Grid, height: int, width: int) -> list[tuple[float, float]]:
    """Grid points [row, column] back in image pixels (x, y)."""
    sup_h, sup_w = supervision_size(height, width)
    return [(p[1] * width / sup_w, p[0] * height / sup_h) for p in points]


def supervision_features(feat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Decoder features ``[B, C, h, w]`` resized to the grid, bilinearly (``F.interpolate``'s default corners),
    in float32."""
    return F.interpolate(feat.float(), size, mode="bilinear")


def grid_mask(mask: torch.Tensor, size: tuple[int, int], latent_hw: tuple[int, int]) -> torch.Tensor:
    """The editable region as the code makes it: a MASK (``[H, W]`` or ``[B, H, W]``, image size) binarised
    (> 0.5), nearest-resized to the grid and from there to the latent, ``[1, 1, h, w]`` float32."""
    plane = (mask if mask.ndim == 2 else mask[0]).float()
    binary = (plane > 0.5).float()[None, None]
    return F.interpolate(F.interpolate(binary, size, mode="nearest"), latent_hw, mode="nearest")


def shifted_patch(feat: torch.Tensor, r1: int, r2: int, c1: int, c2: int, dy: float, dx: float) -> torch.Tensor:
    """Rows ``r1..r2-1`` and columns ``c1..c2-1`` of ``feat`` (``[B, C, H, W]``) moved by ``(dy, dx)`` grid
    pixels, sampled bilinearly with the code's weights (a shift below one pixel in each direction; cells
    past the border clamped to it)."""
    _, _, height, width = feat.shape
    rows = torch.arange(r1, r2, device=feat.device, dtype=torch.float32) + dy
    cols = torch.arange(c1, c2, device=feat.device, dtype=torch.float32) + dx
    r0, q0 = torch.floor(rows), torch.floor(cols)
    wy, wx = (rows - r0)[:, None], (cols - q0)[None, :]
    r0, q0 = r0.long(), q0.long()
    ra, rb = r0.clamp(0, height - 1), (r0 + 1).clamp(0, height - 1)
    qa, qb = q0.clamp(0, width - 1), (q0 + 1).clamp(0, width - 1)

    def cells(r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return feat.index_select(2, r).index_select(3, q)

    return (cells(ra, qa) * ((1 - wx) * (1 - wy)) + cells(rb, qa) * ((1 - wx) * wy)
            + cells(ra, qb) * (wx * (1 - wy)) + cells(rb, qb) * (wx * wy))


def _window(p: float, radius: int, size: int) -> tuple[int, int]:
    """The code's clipped window ``max(0, int(p) - r) .. min(size, int(p) + r + 1)``."""
    return max(0, int(p) - radius), min(size, int(p) + radius + 1)


def motion_loss(feat: torch.Tensor, handles: Grid, targets: Grid, r_m: int, reach: float = 2.0) -> torch.Tensor:
    """Motion supervision on the current features ``feat`` (``[1, C, H, W]`` in the grid): per handle not
    within ``reach`` of its target, ``(2 r_m + 1)^2`` times the mean absolute difference of the patch about
    the handle (detached) and the patch moved one pixel towards the target (``shifted_patch``). A zero
    (with the graph) where every handle is within ``reach``."""
    _, _, height, width = feat.shape
    loss = feat.sum() * 0
    for (py, px), (ty, tx) in zip(handles, targets):
        norm = math.hypot(ty - py, tx - px)
        if norm < reach:
            continue
        dy, dx = (ty - py) / norm, (tx - px) / norm
        r1, r2 = _window(py, r_m, height)
        c1, c2 = _window(px, r_m, width)
        still = feat[:, :, r1:r2, c1:c2].detach()
        moved = shifted_patch(feat, r1, r2, c1, c2, dy, dx)
        loss = loss + (2 * r_m + 1) ** 2 * F.l1_loss(still, moved)
    return loss


def ddim_prev(eps: torch.Tensor, z: torch.Tensor, sigma: float, sigma_prev: float) -> torch.Tensor:
    """One deterministic DDIM step in DDPM space (``z_t = sqrt(abar) x0 + sqrt(1 - abar) eps``) from noise level
    ``sigma`` to ``sigma_prev`` (``sigma = sqrt((1 - abar) / abar)``), the code's ``DragPipeline.step``."""
    abar, abar_prev = 1 / (1 + sigma ** 2), 1 / (1 + sigma_prev ** 2)
    x0 = (z - (1 - abar) ** 0.5 * eps) / abar ** 0.5
    return abar_prev ** 0.5 * x0 + (1 - abar_prev) ** 0.5 * eps


def mask_loss(x_prev: torch.Tensor, x_prev_0: torch.Tensor, editable: torch.Tensor | None, lam: float) -> torch.Tensor:
    """``lam * sum |(x_prev - x_prev_0) * (1 - editable)|``: outside the editable region the step's result
    stays; zero without a region (``editable`` None or empty, as the code's ``using_mask``)."""
    if editable is None:
        return x_prev.sum() * 0
    return lam * ((x_prev - x_prev_0) * (1.0 - editable.to(x_prev))).abs().sum()


def track_points(feat0: torch.Tensor, feat: torch.Tensor, handles: Grid, handles_init: Grid, r_p: int) -> Grid:
    """Each handle moved to the pixel within ``r_p`` of it (clipped to the grid) whose feature in ``feat`` is
    nearest, in L1 over channels, to ``feat0``'s at the handle's starting pixel; the first such pixel in
    row-major order on a tie (``argmin``). One read of the results per call (the loop's stop test needs them)."""
    _, _, height, width = feat0.shape
    moved = []
    with torch.no_grad():
        for (py, px), (iy, ix) in zip(handles, handles_init):
            f0 = feat0[:, :, int(iy), int(ix)]
            r1, r2 = _window(py, r_p, height)
            c1, c2 = _window(px, r_p, width)
            dist = (f0[:, :, None, None] - feat[:, :, r1:r2, c1:c2]).abs().sum(dim=1)[0]
            row, col = divmod(int(dist.argmin()), dist.shape[-1])   # sampling-path-ok: once per optimisation step
            moved.append([float(r1 + row), float(c1 + col)])
    return moved


def reached(handles: Grid, targets: Grid, reach: float = 2.0) -> bool:
    """The loop's stop test: every handle within ``reach`` grid pixels of its target."""
    return all(math.hypot(t[0] - h[0], t[1] - h[1]) < reach for h, t in zip(handles, targets))
