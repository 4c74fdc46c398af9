"""A concept of concept guidance: an extra prompt whose prediction is added to (or, reversed,
taken from) classifier-free guidance, with its paper's scale, warm-up, cool-down, percentile
threshold and weight. SEGA (Brack et al. 2023) and LEDITS++ (Brack et al. 2024) take the same
concepts (chained as ``SEGA_CONCEPTS``); LEDITS++ also reads their token positions for its masks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Concept:
    scale: float = 5.0
    reverse: bool = False            # True: remove the concept
    warmup: int = 10
    cooldown: Optional[int] = None   # step from which the concept stops acting; None: never
    threshold: float = 0.9
    weight: float = 1.0
    tokens: Optional[tuple[int, ...]] = None   # the concept's token positions in its prompt (LEDITS++'s masks)
