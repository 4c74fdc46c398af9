"""A row of the technique table: what the code and the docs know of one technique. Each technique
folder (``invertedit/techniques/<name>/``) defines its ``ROW``; ``invertedit/techniques/__init__.py``
collects them in the table's order.

The row's ``settings`` are the paper's defaults as the nodes take them: the one source of each
(a node's widget default and its tooltip read it, ``settings_of``). Plain data (no torch, no host),
so that the docs and the workflow writer read it without booting.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple


class Technique(NamedTuple):
    name: str
    kind: str                          # the node menu's group: inversion, attention, guidance, imagic, personalise, flow, spatial, testing
    nodes: tuple[str, ...]             # node_id of each node, as registered
    paper: str                         # "" for the pack's own tools
    defaults: str                      # the paper's defaults, as the nodes take them
    cost: str                          # UNet rows, N = sampling steps
    workflows: tuple[str, ...]         # example workflows (make_workflows.WORKFLOWS keys)
    benchmark: tuple[str, str] | None  # (module under workshop/benchmarks/, the row's name as it starts)
    summary: str                       # what it does, in a sentence
    settings: Mapping[str, object] = {}   # "node_id.input": the paper's default, the node's widget default
    quick: Mapping[str, Mapping[str, object]] = {}   # node_id -> inputs of a quick run (QUICK_STEPS, QUICK_SIZE)
    quick_steps: int = 0               # steps a quick run needs at least, when more than QUICK_STEPS

    def settings_of(self, node: str) -> dict[str, object]:
        """The paper's defaults of ``node``'s inputs (``settings``, by input name): its widgets' defaults."""
        prefix = node + "."
        return {key[len(prefix):]: value for key, value in self.settings.items() if key.startswith(prefix)}


# A quick run (the half-precision lane, tests/host/test_half_precision.py): every workflow at
# QUICK_STEPS sampling and inversion steps on the toy world at QUICK_SIZE px (a 32x32 latent), each
# technique's inner loops cut to its row's ``quick`` inputs.
QUICK_STEPS = 5
QUICK_SIZE = 256

KINDS = ("inversion", "attention", "guidance", "imagic", "personalise", "flow", "spatial", "testing")
