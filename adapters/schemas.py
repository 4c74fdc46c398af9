"""Inputs and outputs that several nodes declare alike, in one place so that their tooltips agree."""
from __future__ import annotations

from comfy_api.latest import io

from ..guidance.sega import Concept
from .sockets import Concepts

def concept_inputs(warmup: int, paper: str) -> list:
    """The inputs every concept node shares (defaults: the paper's)."""
    return [
        io.Combo.Input("direction", options=["add", "remove"], default="add",
                       tooltip="Add the concept, or remove it (the paper's reverse direction)."),
        io.Float.Input("scale", default=5.0, min=0.0, max=100.0, step=0.1, tooltip=f"Edit guidance scale ({paper}: 5)."),
        io.Int.Input("warmup", default=warmup, min=0, max=1000, tooltip=f"Steps before the concept acts ({paper}: {warmup})."),
        io.Int.Input("cooldown", default=0, min=0, max=1000,
                     tooltip="Step from which the concept stops acting; 0: never (the default)."),
        io.Float.Input("threshold", default=0.9, min=0.0, max=0.999, step=0.01,
                       tooltip=f"Percentile below which the concept's guidance (or mask) is dropped ({paper}: 0.9)."),
        io.Float.Input("weight", default=1.0, min=0.0, max=100.0, step=0.1,
                       tooltip="Weight against the other concepts (all 1: equal)."),
        Concepts.Input("concepts", optional=True, tooltip="Concepts from other concept nodes, to chain."),
    ]


def make_concept(direction: str, scale: float, warmup: int, cooldown: int, threshold: float, weight: float,
                 tokens: tuple[int, ...] | None = None) -> Concept:
    return Concept(scale=scale, reverse=direction == "remove", warmup=warmup, cooldown=cooldown or None,
                   threshold=threshold, weight=weight, tokens=tokens)
