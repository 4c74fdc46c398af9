"""The compile lane (issue 77): editors under the host's TorchCompileModel give the eager run's pictures.

Each workflow is the half-precision lane's (``test_half_precision.lane_prompt``: the test run's prompt, cut
to a few steps), run twice through the host's executor: as it is, and with every input that took the
built-in loader's MODEL taken from a TorchCompileModel node on it (the host's node, its ``execute``: a clone
with ``comfy_api.torch_helpers.set_torch_compile_wrapper``, the diffusion model compiled at sample time).
The node offers ``inductor`` and ``cudagraphs``; on this CPU inductor compiles a C++ kernel per graph (the
plainest workflow took 153 s against 0.5 s eager: docs/measurements.md, "TorchCompileModel"), so the lane
hands the same wrapper the ``aot_eager`` backend: torch.compile's whole front end (Dynamo's tracing, guards,
graph breaks and recompiles; AOTAutograd's graphs, backward included) without the code generation. What it
checks and counts is what inductor is handed; inductor's own numerics are measured on a GPU (when one is
lent) and on this CPU by ``workshop/benchmarks/compile_lane.py``.

Per workflow: every saved image within ``PSNR_MIN`` of the eager run's, and the compiled graphs, graph
breaks and frames Dynamo counted (``torch._dynamo.utils.counters``), printed and held to the counts measured
(``GRAPHS_MAX``) so that a change that makes the editors harder to compile fails here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import test_half_precision as half_lane
from test_half_precision import _run, builtin_loader, lane_prompt, model_from, psnr
from test_workflows import WORKFLOWS

runner, watch = half_lane.runner, half_lane.watch   # the half-precision lane's fixtures

BACKEND = "eager"
# One workflow per kind of editor the pack patches the model with: attention injection (P2P, Plug-and-Play,
# MasaCtrl), a guider (LEDITS++), an inversion-following patch (Null-Text, whose optimisation takes gradients
# through the compiled model), and the flow editors (FlowEdit's guider, KV-Edit's cache, RF-Solver-Edit's
# value sharing, joint-attention Prompt-to-Prompt on SD3).
LANE = ("Toy - Prompt-to-Prompt replace", "Toy - Plug-and-Play edit", "Toy - MasaCtrl edit", "Toy - LEDITS++ edit", "Toy - Null-text inversion and edit",
        "Flux - FlowEdit", "Flux - KV-Edit", "Flux - RF-Solver-Edit", "SD3 - Prompt-to-Prompt edit")
PSNR_MIN = 40.0   # measured: identical pictures but for a few rounding steps (docs/measurements.md)
# Graphs Dynamo compiled for one run, as measured on 2026-11-29 (docs/measurements.md, "TorchCompileModel"): one
# per batch size, and one more where a branch on the step flips (the patches read the step from the call's options,
# ``hostkit/steps.CLOCK_KEY``). Joint-attention Prompt-to-Prompt builds its plans inside the first calls (a graph
# break each). A change that adds graphs fails here.
GRAPHS_MAX = {"Toy - Prompt-to-Prompt replace": 5, "Toy - Plug-and-Play edit": 4, "Toy - MasaCtrl edit": 6, "Toy - LEDITS++ edit": 2,
              "Toy - Null-text inversion and edit": 5, "Flux - FlowEdit": 1, "Flux - KV-Edit": 6, "Flux - RF-Solver-Edit": 8,
              "SD3 - Prompt-to-Prompt edit": 27}
LONGER = 12   # steps of the run that must compile no more graphs than the lane's (``test_graphs_do_not_grow_with_steps``)
_GRAPHS: dict[str, int] = {}   # graphs compiled by each lane run of ``test_editor_under_torch_compile`` (its prompt: the lane's)


def compiled_prompt(prompt: dict, backend: str = "inductor") -> dict:
    """``prompt`` with every input that took the built-in loader's MODEL taken from a TorchCompileModel on it."""
    node = {"class_type": "TorchCompileModel", "inputs": {"model": [builtin_loader(prompt), 0], "backend": backend}}
    return model_from(prompt, "compiled", node)


@pytest.fixture
def any_backend(host, monkeypatch):
    """The host's TorchCompileModel, handing the lane's ``BACKEND`` to the same wrapper its ``execute`` installs."""
    import comfy_extras.nodes_torch_compile as node
    from comfy_api.torch_helpers import set_torch_compile_wrapper

    def execute(cls, model, backend):
        m = model.clone()
        set_torch_compile_wrapper(model=m, backend=BACKEND)
        return node.io.NodeOutput(m)

    monkeypatch.setattr(node.TorchCompileModel, "execute", classmethod(execute))


@pytest.mark.parametrize("name", LANE)
def test_editor_under_torch_compile(name, host, runner, watch, any_backend):
    import torch._dynamo
    from torch._dynamo.utils import counters

    path = WORKFLOWS / f"{name}.json"
    reference, problems, eager_s = _run(lane_prompt(path, host, runner), host, runner, watch)
    assert not problems, f"eager: {problems}"
    torch._dynamo.reset()
    counters.clear()
    try:
        saved, problems, compiled_s = _run(compiled_prompt(lane_prompt(path, host, runner)), host, runner, watch)
        graphs, frames = counters["stats"]["unique_graphs"], counters["frames"]["total"]
        breaks = sum(counters["graph_break"].values())
    finally:
        torch._dynamo.reset()
    _GRAPHS[name] = graphs
    worst = math.inf
    for key, images in saved.items():
        for image, ref in zip(images, reference[key]):
            if not np.isin(ref, (0.0, 255.0)).all():
                worst = min(worst, psnr(image, ref))
            else:
                worst = min(worst, math.inf if (image == ref).all() else 0.0)
    print(f"{name}: eager {eager_s:.1f}s, {BACKEND} {compiled_s:.1f}s, PSNR>={worst:.1f}dB, {graphs} graphs, "
          f"{breaks} graph breaks, {frames} frames")
    assert not problems, problems
    assert worst >= PSNR_MIN, f"PSNR {worst:.1f} dB < {PSNR_MIN} dB"
    if name in GRAPHS_MAX:
        assert graphs <= GRAPHS_MAX[name], f"{graphs} graphs compiled, {GRAPHS_MAX[name]} measured"


def test_graphs_do_not_grow_with_steps(host, runner, watch, any_backend):
    """Plug-and-Play (its feature and attention injection read the step in every patched call) compiles as many
    graphs over ``LONGER`` steps as over the lane's: the step is an input of the compiled graph, not a constant it
    guards on (which recompiled at every step, and past Dynamo's 8 recompiles ran the rest eagerly). The count at the
    lane's steps is ``test_editor_under_torch_compile``'s for the same prompt where that test ran first in this
    process (the suite's order), else counted here."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    import json

    from workshop import make_workflows

    path = WORKFLOWS / "Toy - Plug-and-Play edit.json"
    graphs = {}
    for steps in (half_lane.LANE_STEPS, LONGER):
        if steps == half_lane.LANE_STEPS and path.stem in _GRAPHS:   # the lane's run of it: counted already
            graphs[steps] = _GRAPHS[path.stem]
            continue
        prompt = runner.prepare_prompt(json.loads(path.read_text(encoding="utf-8")), host=host,
                                       overrides=make_workflows.toy_overrides(path.stem, quick=True))
        half_lane.lane_prompt(path, host, runner)   # the lane's small sample image in the input folder
        prompt = compiled_prompt(half_lane.lane_cut(prompt, steps=steps))
        assert any(v["inputs"].get("steps") == steps for v in prompt.values())
        torch._dynamo.reset()
        counters.clear()
        try:
            _, problems, _ = _run(prompt, host, runner, watch)
            graphs[steps] = counters["stats"]["unique_graphs"]
        finally:
            torch._dynamo.reset()
        assert not problems, problems
    print(f"plug_and_play_edit under compile: {graphs}")
    assert graphs[LONGER] <= graphs[half_lane.LANE_STEPS], graphs
