"""The inversion methods the pack knows, as objects: one table that Apply Inversion, Load
Inversion and the pack's samplers read, so nothing matches on names scattered through nodes.

A method says what it is called in an INVERSION record, which clues (per-step tensors) the
record must carry, which method it refines (``built_on``: Negative-Prompt, Null-Text and
Direct refine a DDIM inversion), whether it needs its own sampler (EDICT's coupled sequences,
edit-friendly DDPM's noise maps cannot be replayed by the host's samplers), whether it holds
only for the DDIM/Euler step, and how it patches sampling (``Patch``).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Patch(Enum):
    """How a method acts while the host samples (the adapter layer maps each to a host patch)."""
    NONE = "none"
    SOURCE_AS_NEGATIVE = "source as negative"   # Negative-Prompt Inversion
    NULL_TEXT = "per-step null text"            # Null-text inversion
    ONTO_TRAJECTORY = "source onto trajectory"  # Direct Inversion


@dataclass(frozen=True)
class Method:
    name: str                          # as stored in the record
    made_by: str                       # the node that makes it (for messages)
    clues: tuple[str, ...] = ()        # clue keys the record must carry
    built_on: str | None = None        # the method this one refines
    own_sampler: str | None = None     # the pack sampler node it must be sampled with
    exact_step_only: bool = False      # holds only for the host's DDIM/Euler step
    patch: Patch = Patch.NONE

    def missing_clues(self, clues: dict) -> list[str]:
        return [c for c in self.clues if c not in clues]


DDIM = Method("ddim", "DDIM Invert")
NEGATIVE_PROMPT = Method("negative-prompt", "Negative-Prompt Inversion", clues=("source.cond",), built_on="ddim",
                         patch=Patch.SOURCE_AS_NEGATIVE)
NULL_TEXT = Method("null-text", "Null-Text Optimize", clues=("null_text",), built_on="ddim", patch=Patch.NULL_TEXT)
DIRECT = Method("direct", "Direct Inversion", built_on="ddim", exact_step_only=True, patch=Patch.ONTO_TRAJECTORY)
EDICT = Method("edict", "EDICT Invert", clues=("edict.y",), own_sampler="EDICT Sampler")
EDIT_FRIENDLY = Method("edit-friendly", "Edit-Friendly DDPM Invert", clues=("ddpm.corrections",),
                       own_sampler="Edit-Friendly DDPM Sampler")
# Fixed-point inversion (ReNoise, AIDI; ``techniques/fixed_point/iteration.py``): a trajectory of its own, made
# from the image (built_on None); each step solves the inverse of the host's DDIM/Euler step, so the
# stock samplers replay it with nothing to correct (no clues, no patch), approximately with others.
FIXED_POINT = Method("fixed-point", "Fixed-Point Invert")

# Flow models (``inversion/flow.py``): the solvers' inversions, and RF-Inversion's controlled one (its
# target noise kept as a clue). Sampled back from the inversion's NOISE by SamplerCustomAdvanced: Euler's
# and RF-Inversion's by the host's euler sampler, RF-Solver's and FireFlow's by the Flow Sampler.
FLOW_EULER = Method("flow-euler", "Flow Invert")
RF_SOLVER = Method("rf-solver", "Flow Invert", own_sampler="Flow Sampler")
FIREFLOW = Method("fireflow", "Flow Invert", own_sampler="Flow Sampler")
# Uni-Inv (UniEdit-Flow): made so that the plain Euler step retraces it (the authors sample it back with Euler)
UNI_INV = Method("uni-inv", "Flow Invert")
RF_INVERSION = Method("rf-inversion", "RF-Inversion Invert", clues=("rf.y1",))
STABLE_FLOW = Method("stable-flow", "Stable Flow Invert")
FLOW_METHODS = (FLOW_EULER, RF_SOLVER, FIREFLOW, UNI_INV, RF_INVERSION, STABLE_FLOW)
# DNAEdit (techniques/dnaedit): its own inversion up to a start step, each step's offset and source velocity kept
DNAEDIT = Method("dnaedit", "DNAEdit Invert", clues=("dnaedit.dx", "dnaedit.velocity"))
# FTEdit (techniques/ftedit): each Euler step inverted as a fixed point; sampled back by the host's euler sampler
FTEDIT = Method("ftedit", "FTEdit Invert")
SOLVER_METHODS = {"euler": FLOW_EULER, "rf-solver": RF_SOLVER, "fireflow": FIREFLOW, "uni-inv": UNI_INV}   # Flow Invert's, by solver

METHODS: dict[str, Method] = {m.name: m for m in (DDIM, NEGATIVE_PROMPT, NULL_TEXT, DIRECT, EDICT, EDIT_FRIENDLY,
                                                  FIXED_POINT, *FLOW_METHODS, DNAEDIT, FTEDIT)}


def method_of(name: str) -> Method:
    """The method an INVERSION record names; ValueError for one this pack does not know."""
    if name not in METHODS:
        raise ValueError(f"'{name}' is not an inversion method of this pack (known: {', '.join(METHODS)})")
    return METHODS[name]
