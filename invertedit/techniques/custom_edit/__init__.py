"""Custom-Edit, Choi et al. 2023: Puts a learned subject into a real image: the DreamBooth-taught MODEL
into DDIM Invert and Attention Inject, the target prompt naming the identifier.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Custom-Edit", "personalise", (), "Choi et al. 2023",
    "the paper's Prompt-to-Prompt on an inversion with the customised model; here cross 0.6 / self 0.2 at cfg 3 "
    "(toy world 1), 0.8 / 0.4 at cfg 2 (toy world 2: from an inverted photo, guidance carries a taught colour past "
    "itself as it grows)",
    "the customisation once, then N: inversion and one pair run",
    ("Toy - DreamBooth subject and Custom-Edit", "Toy - Custom-Edit (your subject into a photo)"), None,
    "Puts a learned subject into a real image: the DreamBooth-taught MODEL into DDIM Invert and Attention Inject, "
    "the target prompt naming the identifier.")
