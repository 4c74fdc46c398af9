"""Changed Region: the region an unlocked instruction edit changed, as the MASK a lock (KV-Edit on the editor's
inversion) leaves to the instruction. Math in ``region.py``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...hostkit.errors import NodeInputError, check_finite, check_finite_tensor, check_threshold
from ...hostkit.schemas import io
from . import ROW
from .glue import region_lock
from .region import change_map, changed_cells

PIXELS_PER_CELL = 8   # the VAEs of Flux.1 and Qwen-Image (Wan 2.1) downscale by 8


def _image_cells(node: str, name: str, latent) -> torch.Tensor:
    """The LATENT ``latent`` as one image's cells ``[channels, h, w]`` (Qwen-Image's frame axis of one frame taken
    off), checked."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim not in (4, 5):
        raise NodeInputError(node, f"input '{name}' is not an image's LATENT; connect VAE Encode of the image, or the "
                                   f"sampler's output.")
    if samples.ndim == 5:
        if samples.shape[2] != 1:
            raise NodeInputError(node, f"input '{name}' holds {samples.shape[2]} frames; give one image's latent.")
        samples = samples[:, :, 0]
    if samples.shape[0] != 1:
        raise NodeInputError(node, f"input '{name}' holds {samples.shape[0]} images; give one (Latent From Batch).")
    check_finite_tensor(node, f"input '{name}'", samples, "give the latent of a picture.")
    return samples[0]


class ChangedRegion(io.ComfyNode):
    NAME = "Changed Region"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditChangedRegion",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Where an unlocked instruction edit (Flux.1 Kontext, Qwen-Image-Edit sampled as usual) changed the "
                "picture, as a MASK: the region to give KV-Edit, which then locks everything else to the input. "
                "Compares the image's latent with the unlocked edit's, cell by cell (8 x 8 pixels, averaged over 3 x "
                "3 cells so that a small shift of the whole picture does not count), keeps the cells changed at least "
                "threshold times the most, and grows them by grow cells."),
            inputs=[
                io.Latent.Input("image", tooltip="The image's latent (VAE Encode of the picture being edited)."),
                io.Latent.Input("edited", tooltip="The unlocked edit's latent: the instruction editor sampled as usual "
                                                  "on this image, at its size (the image's latent as the sampler's "
                                                  "latent), before VAE Decode."),
                io.Float.Input("threshold", default=ROW.settings["InvertEditChangedRegion.threshold"], min=0.0,
                               max=1.0, step=0.01,
                               tooltip="A cell is in the region where it changed at least this fraction of the most "
                                       "changed cell (0.3, as Prompt-to-Prompt's local blend thresholds its maps). "
                                       "Lower: more of the picture left to the instruction."),
                io.Int.Input("grow", default=ROW.settings["InvertEditChangedRegion.grow"], min=0, max=16,
                             tooltip="Cells (8 pixels each) added around the region on every side, so that the lock's "
                                     "edge falls outside what changed (1: 8 pixels)."),
            ],
            outputs=[io.Mask.Output(display_name="mask", tooltip="The changed region, at the image's size."),
                     io.Image.Output(display_name="change", tooltip="How much each cell changed (white: the most), to "
                                                                    "look at before trusting the mask.")],
        )

    @classmethod
    def execute(cls, image, edited, threshold, grow) -> io.NodeOutput:
        check_finite(cls.NAME, threshold=threshold)
        check_threshold(cls.NAME, "threshold", threshold, "the change is measured against the most changed cell",
                        "the region would be the most changed cell alone", "every cell would be in it", 0.3)
        if isinstance(grow, bool) or not isinstance(grow, int) or grow < 0:
            raise NodeInputError(cls.NAME, f"input 'grow' is {grow!r}; give a whole number of cells, 0 or more (1: "
                                           f"8 pixels).")
        before, after = _image_cells(cls.NAME, "image", image), _image_cells(cls.NAME, "edited", edited)
        if before.shape != after.shape:
            raise NodeInputError(cls.NAME, f"input 'edited' is a latent {tuple(after.shape)} and 'image' "
                                           f"{tuple(before.shape)}: the edit was sampled at another size or with "
                                           f"another model (Kontext's FluxKontextImageScale rescales the picture); "
                                           f"sample the unlocked edit with the image's latent as its latent, at the "
                                           f"image's size.")
        change = change_map(before, after)
        cells = changed_cells(change, threshold, grow)
        if not bool(cells.any()):   # sampling-path-ok: once per node execution
            raise NodeInputError(cls.NAME, "input 'edited' is the image itself: nothing changed, so there is no region "
                                           "to lock around; connect the unlocked edit's latent (the instruction "
                                           "editor's output before VAE Decode).")
        if bool(cells.all()):   # sampling-path-ok: once per node execution
            raise NodeInputError(cls.NAME, f"the change covers the whole image at threshold {threshold:g} and grow "
                                           f"{grow}: the unlocked edit redrew everything (or shifted the picture by "
                                           f"more than a cell), and a lock would keep nothing; raise threshold, lower "
                                           f"grow, or paint the region.")
        size = (cells.shape[0] * PIXELS_PER_CELL, cells.shape[1] * PIXELS_PER_CELL)
        mask = F.interpolate(cells[None, None].float(), size=size, mode="nearest")[0]
        shade = (change / change.max())[None, None]
        picture = F.interpolate(shade, size=size, mode="nearest")[0, 0, :, :, None].expand(-1, -1, 3)
        return io.NodeOutput(mask, picture[None].contiguous())


def parse_refresh(node: str, text: str) -> tuple[int, ...]:
    """The comma-separated steps of ``text`` at which every token is computed again (RegionE's refresh steps)."""
    try:
        steps = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        raise NodeInputError(node, f"input 'refresh_steps' is {text!r}; give step numbers separated by commas "
                                   f"(RegionE on Kontext: 16), or leave it empty.") from None
    if any(s < 0 for s in steps):
        raise NodeInputError(node, f"input 'refresh_steps' holds {min(steps)}; steps count from 0.")
    return steps


class RegionLock(io.ComfyNode):
    NAME = "Region Lock"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditRegionLock",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "Keeps an instruction editor's edit (Flux.1 Kontext, Qwen-Image-Edit, sampled as usual) to a region, "
                "without an inversion: outside the mask the latent follows the straight path from the run's noise to "
                "the image and ends on it, so the output there is your image at its own size; inside, the editor "
                "draws. With region_cache (RegionE's region-instruction KV cache), after the warm-up steps only the "
                "text and the region's tokens are computed, against the keys and values of the last full step: "
                "faster. Sample this MODEL with the image's latent as the sampler's latent, denoise 1, euler."),
            inputs=[
                io.Model.Input("model", tooltip="The instruction editor (Flux.1 Kontext, Qwen-Image-Edit; any Flux.1 or "
                                                "Qwen-Image model)."),
                io.Latent.Input("latent", tooltip="The image's latent (VAE Encode of the picture): kept outside the "
                                                  "region, and the sampler's latent_image."),
                io.Mask.Input("mask", tooltip="The region the instruction may change (white): painted in Load Image's "
                                              "mask editor, Attention Store's mask of a word, or Changed Region's. Any "
                                              "size of the image's shape."),
                io.Boolean.Input("region_cache", default=ROW.settings["InvertEditRegionLock.region_cache"],
                                 tooltip="RegionE's region-instruction KV cache (paper: on): after warmup_steps, "
                                         "compute only the text and the region's tokens, the rest's keys and values "
                                         "from the last full step. Off: every token every step (the blend alone)."),
                io.Int.Input("warmup_steps", default=ROW.settings["InvertEditRegionLock.warmup_steps"], min=0,
                             max=1000, tooltip="Steps computed on every token first (RegionE on Kontext and on "
                                               "Qwen-Image-Edit: 6 of 28)."),
                io.String.Input("refresh_steps", default=ROW.settings["InvertEditRegionLock.refresh_steps"],
                                tooltip="Steps at which every token is computed again and the kept keys and values "
                                        "renewed, comma-separated, counted from 0 (RegionE on Kontext and on Qwen-Image-Edit: "
                                        "16 of 28)."),
            ],
            outputs=[io.Model.Output(tooltip="The model to sample the edit with (the image's latent as latent_image).")],
        )

    @classmethod
    def execute(cls, model, latent, mask, region_cache, warmup_steps, refresh_steps) -> io.NodeOutput:
        samples = latent.get("samples") if isinstance(latent, dict) else None
        if not isinstance(samples, torch.Tensor):
            raise NodeInputError(cls.NAME, "input 'latent' is not a LATENT; connect VAE Encode of the picture.")
        check_finite_tensor(cls.NAME, "input 'latent'", samples, "connect VAE Encode of the picture.")
        if not bool(samples.any()):   # sampling-path-ok: once per node execution
            raise NodeInputError(cls.NAME, "input 'latent' is empty (all zeros): Region Lock keeps an image outside the "
                                           "region; connect VAE Encode of the picture, not Empty Latent Image.")
        if region_cache and warmup_steps < 1:
            raise NodeInputError(cls.NAME, "input 'warmup_steps' is 0 with region_cache on: the cache keeps what a "
                                           "full step computed, so at least the first step computes every token; give "
                                           "1 or more (RegionE on Kontext: 6).")
        refresh = parse_refresh(cls.NAME, refresh_steps)
        return io.NodeOutput(region_lock(cls.NAME, model, samples, mask, warmup_steps, refresh, bool(region_cache)))


NODES = [ChangedRegion, RegionLock]
