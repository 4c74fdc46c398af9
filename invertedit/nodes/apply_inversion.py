"""Apply Inversion: a MODEL that checks each sampling run can honour an inversion.

The inverted latent alone goes into the host's stock samplers. Patched with the INVERSION,
the model refuses, with a message saying what would work, a run that cannot reconstruct:
another model, another schedule (steps, scheduler, start step), another latent size, noise
added to the inverted latent, or a stochastic (ancestral/SDE) sampler. Inversion methods
apply their clues from here: a negative-prompt inversion's source prompt as the negative
conditioning, a null-text inversion's per-step null embeddings in the unconditional rows, a
direct inversion's trajectory correction of the source rows.
"""
from __future__ import annotations

from ..hostkit.schemas import io

from ..hostkit.errors import check_inversion
from ..hostkit.sockets import Inversion as InversionSocket
from ..hostkit.inversion_patches import SAMPLING_PATCHES, InversionGuard, checked_method
from ..hostkit.keys import INVERSION_KEY
from ..hostkit.sampling import wrap_runs


class ApplyInversion(io.ComfyNode):
    NAME = "Apply Inversion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditApplyInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=(
                "Patches the MODEL with an INVERSION: each sampling run is checked against it (same model, steps, "
                "scheduler, start step and latent size; no added noise; a deterministic sampler) and refused with a "
                "clear message otherwise. The input MODEL is not changed."),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with: the one the inversion was made with."),
                InversionSocket.Input("inversion", tooltip="From DDIM Invert or Load Inversion."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model carrying the inversion.")],
        )

    @classmethod
    def execute(cls, model, inversion) -> io.NodeOutput:
        check_inversion(ApplyInversion.NAME, inversion, model=model)
        method = checked_method(inversion, ApplyInversion.NAME)
        m = model.clone()
        wrap_runs(m, INVERSION_KEY, InversionGuard(inversion))
        SAMPLING_PATCHES[method.patch](m, inversion)
        return io.NodeOutput(m)


NODES = [ApplyInversion]
