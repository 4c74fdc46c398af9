"""RAVE (Kara et al., CVPR 2024): the clip's frames denoised as shuffled grids (math in ``grid.py``,
the wrapper in ``glue.py``; the defaults are the authors' ``configs/truck.yaml``)."""
from __future__ import annotations

from ...hostkit.schemas import io
from . import ROW
from .glue import rave

PAPER = ROW.settings_of("InvertEditRAVE")


class RAVE(io.ComfyNode):
    NAME = "RAVE"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditRAVE",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=(
                "RAVE (Kara et al.): edits a clip (an IMAGE batch) consistently. At every model call the frames are "
                "tiled into grids of grid_size x grid_size that the UNet denoises as single pictures, so that "
                "self-attention spans a grid's frames, and the frames are shuffled across the grids at every step. "
                "Sample the clip's inverted LATENT (DDIM Invert, Apply Inversion) with KSamplerAdvanced and the "
                "target prompt (paper: 50 steps, cfg 7.5, an empty inversion prompt). The frame count must be a "
                "multiple of grid_size^2. The UNet runs on pictures grid_size times the frame's side: the same rows' "
                "arithmetic in the convolutions, more in the attention. The authors' ControlNet (depth) guidance is "
                "not included."),
            inputs=[
                io.Model.Input("model", tooltip="The model the clip was inverted with."),
                io.Int.Input("grid_size", default=PAPER["grid_size"], min=1, max=8,
                             tooltip=f"Frames per grid side: grids of grid_size x grid_size frames (paper: "
                                     f"{PAPER['grid_size']}); the clip's frame count must be a multiple of its square."),
                io.Boolean.Input("shuffle", default=PAPER["shuffle"],
                                 tooltip="Shuffle the frames across the grids at every step (paper: on); off keeps "
                                         "each grid's frames together."),
                io.Int.Input("seed", default=PAPER["seed"], min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip=f"Seed of the shuffles (the authors' config: {PAPER['seed']})."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model that denoises the frames as shuffled grids.")],
        )

    @classmethod
    def execute(cls, model, grid_size, shuffle, seed) -> io.NodeOutput:
        return io.NodeOutput(rave(cls.NAME, model, grid_size, shuffle, seed))


NODES = [RAVE]
