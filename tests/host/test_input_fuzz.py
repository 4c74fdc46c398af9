"""Every widget input of the pack's nodes in a shipped workflow, changed one at a time to a value at
or past its edge: NaN and the infinities, zero and the ends of its range, empty, blank and unknown
words, every other dropdown option, the other boolean. Each changed run must either finish with
pictures that are not flat (black, white, one colour; a NaN saves as black) wherever the unchanged
workflow's are not, or be refused: by the host's validation (a value outside the input's range), or by the
pack's node with its own message (``NodeInputError``: the node, the input, what would work). An
exception of any other kind (from torch, or from a host node downstream of ours) or a flat picture
fails: issue 24's rule ("no silent wrong picture, no unclear error") swept over the inputs instead
of listed case by case, as ``test_bad_inputs.py`` does.

Each workflow runs as the half-precision lane cuts it (``test_half_precision.lane_prompt``: the
toy or demo model, a few steps, small pictures), in float32; ``INVERTEDIT_FUZZ_DTYPE=bf16`` (or
fp16) runs any of the sweeps with the UNet in half precision, as the lane does. CI runs
``FUZZ_CI``'s workflows, whose nodes take most of the pack's kinds of input (flow inversion, KV-Edit, joint attention, the UNet
attention editor, DiffEdit, Latent Blend, DreamBooth); ``INVERTEDIT_FUZZ=all`` runs every shipped
workflow (docs/testing.md gives the time and what the sweep found). ``INVERTEDIT_FUZZ=pairs`` runs, in
every shipped workflow, each pair of changes to two different dropdowns or switches (of one node or
two): what a single change cannot reach, such as an option of one node that only breaks under what
another node does to the calls. ``INVERTEDIT_FUZZ=rewire`` connects each linked input of a pack node,
and of each host node after one, one at a time, to every other output of its type in the workflow
that is not downstream of it (a user's wiring slip: the image's latent for the pair's, the unpatched
model, the source prompt's conditioning for the pair's).
"""
from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from test_half_precision import lane_prompt, unet_in
from test_workflows import WORKFLOW_FILES

FUZZ_CI = ("Flux - KV-Edit", "Flux - Prompt-to-Prompt edit", "Toy - Local edit with Latent Blend", "Toy - DreamBooth subject and Custom-Edit")
SELECTED = [p for p in WORKFLOW_FILES if os.environ.get("INVERTEDIT_FUZZ") == "all" or p.stem in FUZZ_CI]
PAIRED = WORKFLOW_FILES if os.environ.get("INVERTEDIT_FUZZ") == "pairs" else []
REWIRED = WORKFLOW_FILES if os.environ.get("INVERTEDIT_FUZZ") == "rewire" else []
DTYPE = os.environ.get("INVERTEDIT_FUZZ_DTYPE", "fp32")   # the UNet's: fp32 (CI), bf16 or fp16 (as unet_in)
MODEL_LOADERS = ("InvertEditToyModel", "InvertEditDemoModel")
INT_MAX_TRIED = 16   # an integer input's maximum is tried only up to this (a step count's 1000 would only be slow)


def changed_values(spec, value) -> list:
    """The values ``value`` of an input of ``spec`` (its ``/object_info`` entry) is changed to."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(kind, list) or kind == "COMBO":
        return [o for o in (kind if isinstance(kind, list) else options.get("options", [])) if o != value]
    if kind == "FLOAT":
        out = [math.nan, math.inf, -math.inf, 0.0]
        out += [float(options[k]) for k in ("min", "max") if k in options and abs(options[k]) < 1e6]
        return sorted({v for v in out if not v == value}, key=str)
    if kind == "INT":
        lo, hi = options.get("min", 0), options.get("max", 2 ** 31)
        return sorted({v for v in (lo, lo + 1) + ((hi,) if hi <= INT_MAX_TRIED else ()) if v != value})
    if kind == "STRING":
        return [v for v in ("", "  ,  ", "xyzzy plugh") if v != value]
    if kind == "BOOLEAN":
        return [not value]
    return []


def is_ours(kind: str) -> bool:
    """Whether node class ``kind`` is one of the pack's, other than its model loaders."""
    return kind.startswith("InvertEdit") and kind not in MODEL_LOADERS


def flat_images(outputs: dict, runner) -> set:
    """``(Save Image node, file index)`` of each saved picture that is flat (black, white, one colour; a
    NaN image saves as black)."""
    flat = set()
    for key in outputs:
        for i, path in enumerate(runner.saved_images({key: outputs[key]})):
            with Image.open(path) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
            lo, hi = float(a.min()), float(a.max())
            if hi <= 0.02 or lo >= 0.98 or hi - lo < 0.02:
                flat.add((key, i))
    return flat


def outcome(prompt: dict, host, runner, flat_before: set) -> str | None:
    """None where the run is refused clearly or finishes with pictures as good as the unchanged
    run's; else what went wrong."""
    try:
        outputs = runner.execute(prompt, host=host)
    except runner.WorkflowError as e:
        message = str(e)
        if " failed: " not in message:
            return None   # the host's validation refused the value, naming the node and the input
        kind = message.split(" failed: ", 1)[1].split(":", 1)[0]
        return None if kind.endswith("NodeInputError") else message + "\n" + getattr(e, "traceback", "")[-1200:]
    flat = flat_images(outputs, runner) - flat_before
    return f"flat pictures (Save Image node, index) {sorted(flat)}" if flat else None


@pytest.fixture(scope="module")
def runner(host):
    from workshop.headless import runner

    return runner


def changes(prompt: dict, host, runner, switches_only: bool = False) -> list[tuple]:
    """``(node id, input, changed value, node class)`` of every change ``changed_values`` makes to a pack
    node's widget input in ``prompt`` (with ``switches_only``, dropdowns and booleans alone)."""
    out = []
    for key, node in prompt.items():
        kind = node["class_type"]
        if not is_ours(kind):
            continue
        info = runner.node_info(kind, host)["input"]
        specs = {**info.get("required", {}), **info.get("optional", {})}
        for name, value in node["inputs"].items():
            if isinstance(value, list) or name not in specs:   # a link, or not a widget
                continue
            if switches_only and not (isinstance(specs[name][0], list) or specs[name][0] in ("COMBO", "BOOLEAN")):
                continue
            out += [(key, name, changed, kind) for changed in changed_values(specs[name], value)]
    return out


def sweep(path, host, runner, runs) -> None:
    """Run ``runs(prompt)``'s lists of changes on ``path``'s lane prompt; fail listing the bad ones."""
    with unet_in(DTYPE):
        _sweep(path, host, runner, runs)


def _sweep(path, host, runner, runs) -> None:
    prompt = lane_prompt(path, host, runner)
    if not any(is_ours(n["class_type"]) for n in prompt.values()):
        pytest.skip(f"{path.stem}: no pack node but the model loader (nothing of ours to change)")
    flat_before = flat_images(runner.execute(prompt, host=host), runner)
    problems, tried = [], 0
    for changed in runs(prompt):
        run = json.loads(json.dumps(prompt))
        for key, name, value, _ in changed:
            run[key]["inputs"][name] = value
        tried += 1
        problem = outcome(run, host, runner, flat_before)
        if problem is not None:
            problems.append(", ".join(f"{kind}.{name} = {value!r}" for _, name, value, kind in changed) + f": {problem}")
    assert not problems, f"{path.stem}: {len(problems)} of {tried} changed runs:\n" + "\n\n".join(problems)


def rewirings(prompt: dict, host, runner) -> list[tuple]:
    """``(node id, input, [source id, slot], node class)`` for each linked input of a pack node, or of a
    host node downstream of one, and each other output of the same type in ``prompt`` that is not
    downstream of that node."""
    outputs = {key: runner.node_info(node["class_type"], host)["output"] for key, node in prompt.items()}
    below: dict = {}

    def downstream(key: str) -> set:
        if key not in below:
            below[key] = {key}
            for other, node in prompt.items():
                if any(isinstance(v, list) and v and str(v[0]) == key for v in node["inputs"].values()):
                    below[key] |= downstream(other)
        return below[key]

    ours = [key for key, node in prompt.items() if is_ours(node["class_type"])]
    after_ours = set().union(*(downstream(key) for key in ours)) if ours else set()
    out = []
    for key, node in prompt.items():
        kind = node["class_type"]
        if key not in after_ours:   # a pack node, or a host node that takes what ours made
            continue
        for name, value in node["inputs"].items():
            if not (isinstance(value, list) and len(value) == 2):
                continue
            wanted = outputs[str(value[0])][value[1]]
            others = {str(v[0]) for n, v in node["inputs"].items() if n != name and isinstance(v, list) and len(v) == 2}
            for source, types in outputs.items():
                if source in downstream(key):
                    continue
                if key not in ours and not (others | {source}) & (after_ours | set(ours)):
                    continue   # a host node that would take nothing of ours: not the pack's to answer for
                out += [(key, name, [source, slot], kind) for slot, t in enumerate(types)
                        if t == wanted and [source, slot] != [str(value[0]), value[1]]]
    return out


@pytest.mark.parametrize("path", SELECTED, ids=[p.stem for p in SELECTED])
def test_every_input_at_its_edges_is_refused_or_drawn(path, host, runner):
    def one_at_a_time(prompt):
        single = [[c] for c in changes(prompt, host, runner)]
        assert single, f"{path.stem}: no pack node input to change"
        return single

    sweep(path, host, runner, one_at_a_time)


@pytest.mark.skipif(not PAIRED, reason="the paired sweep runs with INVERTEDIT_FUZZ=pairs (about 6 minutes on 2 cores)")
@pytest.mark.parametrize("path", PAIRED, ids=[p.stem for p in PAIRED])
def test_dropdowns_and_switches_in_pairs_are_refused_or_drawn(path, host, runner):
    sweep(path, host, runner, lambda prompt: [list(pair) for pair in itertools.combinations(
        changes(prompt, host, runner, switches_only=True), 2) if pair[0][:2] != pair[1][:2]])


@pytest.mark.skipif(not REWIRED, reason="the rewiring sweep runs with INVERTEDIT_FUZZ=rewire")
@pytest.mark.parametrize("path", REWIRED, ids=[p.stem for p in REWIRED])
def test_every_link_rewired_is_refused_or_drawn(path, host, runner):
    sweep(path, host, runner, lambda prompt: [[r] for r in rewirings(prompt, host, runner)])
