"""Refusing an input: the error every node raises for an input that cannot work (its message names
the node, the input and what would work), and the checks that need nothing of the host: a dropdown
value, finite numbers, a lower bound, a threshold on a normalised map. Plain Python, so that the
pure layers' settings checks refuse as the nodes do (``hostkit/errors.py`` has the checks that
read host objects)."""
from __future__ import annotations

import math


class NodeInputError(ValueError):
    """A node's input cannot work; the message names the node, the input and what would."""

    def __init__(self, node: str, message: str):
        super().__init__(f"{node}: {message}")


def check_choice(node: str, name: str, value: str, options) -> None:
    """A dropdown value the host did not check (V3 combos accept anything): refuse one not offered."""
    if value not in options:
        raise NodeInputError(node, f"input '{name}' is '{value}'; choose one of {', '.join(repr(o) for o in options)}.")


def check_finite(node: str, **values: float) -> None:
    """Refuse NaN or infinite numbers (the host's min/max checks let NaN through)."""
    for name, value in values.items():
        if not math.isfinite(value):
            raise NodeInputError(node, f"input '{name}' is {value}; give a finite number.")


def check_at_least(node: str, minimum: int, **values: int) -> None:
    """Refuse numbers below ``minimum`` (negative steps, counts, ...)."""
    for name, value in values.items():
        if value < minimum:
            raise NodeInputError(node, f"input '{name}' is {value}; give {minimum} or more.")


def check_threshold(node: str, name: str, value: float, scale: str, at_one: str, at_zero: str, paper: float) -> None:
    """Refuse a threshold on a map ``scale`` says reaches at most 1 (normalised or rescaled) where it
    would cut nothing useful: at 1 or above no value passes (``at_one``: what the node would then do),
    at 0 or below every value does (``at_zero``)."""
    if not 0.0 < value < 1.0:
        raise NodeInputError(node, f"input '{name}' is {value:g}: {scale}, so {at_one if value >= 1.0 else at_zero}; "
                                   f"give a threshold between 0 and 1 (paper: {paper:g}).")
