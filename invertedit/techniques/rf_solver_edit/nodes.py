"""Share Values: RF-Solver-Edit's feature sharing (Wang et al. 2024) as a patch on a Flux or Qwen-Image
model, from the values Flow Invert kept (its keeper in ``glue.py``; policies in ``value_sharing.py``)."""
from __future__ import annotations

from ...hostkit.errors import check_inversion
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import SOLVER_METHODS
from .glue import share_values


class ShareValues(io.ComfyNode):
    NAME = "Share Values"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditShareValues",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "RF-Solver-Edit's feature sharing (Wang et al.) as a patch on a Flux or Qwen-Image model: in the steps "
                "the inversion kept values for (Flow Invert's share_steps), the blocks from share_from_block attend "
                "with the source's values, so the edit keeps the image's layout and details. Flux: its single blocks, "
                "text and image values (the authors'). Qwen-Image, whose 60 blocks are all joint: its joint blocks, "
                "the image tokens' values only (its prompts are not padded, so the target's text keeps its own "
                "values). SD3 is refused, and so is a prompt with reference images (Kontext, Qwen-Image-Edit). Sample "
                "as for Flow Invert: SamplerCustomAdvanced, its NOISE and SIGMAS, the Flow Sampler with the same "
                "solver, the target prompt."),
            inputs=[
                io.Model.Input("model", tooltip="The Flux or Qwen-Image model the image was inverted with."),
                InversionSocket.Input("inversion", tooltip="Flow Invert's inversion, made with share_steps above 0."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, inversion) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion, model=model, methods=tuple(SOLVER_METHODS.values()))
        return io.NodeOutput(share_values(cls.NAME, model, inversion))


NODES = [ShareValues]
