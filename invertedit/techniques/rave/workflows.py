"""RAVE's example workflows: none yet (the toy clip edit is TokenFlow's and Cross-Frame Attention's)."""
from __future__ import annotations

WORKFLOWS: dict = {}
