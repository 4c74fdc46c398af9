"""Direct Inversion (Ju et al., "PnP Inversion"), a refinement of a DDIM INVERSION that survives
classifier-free guidance: the source branch is put back on the inversion trajectory at every step;
exact reconstruction by construction, the target branch untouched. No extra UNet call. Applied
during sampling by Apply Inversion.
"""
from __future__ import annotations

import dataclasses

from ...hostkit.errors import require_base
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DIRECT


class DirectInversion(io.ComfyNode):
    NAME = DIRECT.made_by

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDirectInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Keeps the source branch exactly on the inversion trajectory at every step (Ju et al., "
                         "'PnP Inversion'): the source is reconstructed exactly at any cfg, the target branch is left "
                         "to the prompt. Apply it with Apply Inversion and sample with ddim or euler. In a "
                         "source/target batch the first rows (as many as the inversion has) are the source."),
            inputs=[InversionSocket.Input("inversion", tooltip="A DDIM inversion (DDIM Invert, cfg 1).")],
            outputs=[InversionSocket.Output(display_name="INVERSION")],
        )

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        require_base(DIRECT, inversion)
        return io.NodeOutput(dataclasses.replace(inversion, method=DIRECT.name))


NODES = [DirectInversion]
