"""Changed Region: the region an unlocked instruction edit changed, as the MASK a lock (KV-Edit on the editor's
inversion) leaves to the instruction. Math in ``region.py``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...hostkit.errors import NodeInputError, check_finite, check_finite_tensor, check_threshold
from ...hostkit.schemas import io
from . import ROW
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


NODES = [ChangedRegion]
