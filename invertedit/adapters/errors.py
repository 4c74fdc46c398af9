"""Errors a node raises for inputs that cannot work, and the checks every node shares. The
message always names the node, the input and what would work."""
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
