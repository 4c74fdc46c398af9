"""Errors a node raises for inputs that cannot work, and the checks every node shares. The
message always names the node, the input and what would work."""
from __future__ import annotations

import math

import torch

from ..inversion.record import Inversion


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


def check_finite_tensor(node: str, what: str, tensor: torch.Tensor, fix: str) -> None:
    """Refuse a tensor holding NaN or infinite values (they would sample to a black or noisy image)."""
    if not bool(torch.isfinite(tensor).all()):  # sampling-path-ok: the checks run once, before a run's first step
        raise NodeInputError(node, f"{what} has NaN or infinite values; {fix}")


def check_inversion(node: str, value, name: str = "inversion") -> Inversion:
    """An INVERSION input must be an inversion record with finite latents; returns it."""
    if not isinstance(value, Inversion):
        raise NodeInputError(node, f"input '{name}' is a {type(value).__name__}, not an INVERSION; connect the "
                                   f"INVERSION output of an inverter (DDIM Invert, EDICT Invert, Edit-Friendly DDPM "
                                   f"Invert, ...) or of Load Inversion.")
    for part, tensor in (("latent", value.latent), ("trajectory", value.trajectory), *value.clues.items()):
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            check_finite_tensor(node, f"input '{name}' ({part})", tensor,
                                "invert the image again (a latent with NaN gives a black or noisy image).")
    return value
