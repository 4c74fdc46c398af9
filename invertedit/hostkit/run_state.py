"""Per-run state of the pack's patches: one typed object per patch and sampling run.

A patch (an attention policy's driver, a guider, a post-CFG step) that keeps something from step
to step (SEGA's momentum, a local blend's maps, the attention maps LEDITS++ masks with) asks for
it with ``run_state(transformer_options, owner, make)``: the object ``make()`` built the first
time ``owner`` asks in this run, the same object for the rest of the run, a new one in the next.

How a run gets its own: ``keep_run_state(model)`` adds one OUTER_SAMPLE wrapper to the cloned
model that puts a new ``RunStates`` under one key of the run's ``transformer_options`` before
the run's first step. The host copies the model options at the start of every sampling run
(``CFGGuider.sample``), and that copy is what the wrapper writes to; every model call of the run
then sees the same ``RunStates`` (the host copies nested *dicts* per call, ``merge_nested_dicts``,
which is why it is not a dict). A loop of the pack's own that calls the model outside the host's
sampling (an inverter) starts its run with ``begin_run(model_options)``. Nothing lives in module
globals or in a node's output that the host caches.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import comfy.patcher_extension

from .errors import NodeInputError

RUN_KEY = "invertedit_run"   # the one transformer_options key of the pack's per-run state

T = TypeVar("T")


class RunStates:
    """The states of one sampling run, by owner (not a dict: see the module's docstring)."""

    def __init__(self):
        self.by_owner: dict[int, tuple[object, object]] = {}


def begin_run(model_options: dict) -> None:
    """Start a run: ``model_options`` (the run's own copy) gets an empty ``RunStates``."""
    model_options.setdefault("transformer_options", {})[RUN_KEY] = RunStates()


def _begin(executor, *args, **kwargs):
    begin_run(executor.class_obj.model_options)
    return executor(*args, **kwargs)


def keep_run_state(model) -> None:
    """Give every sampling run of ``model`` (a clone the caller patches) a fresh per-run state."""
    if not model.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, RUN_KEY):
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, RUN_KEY, _begin)


def run_state(transformer_options: dict, owner: object, make: Callable[[], T], node: str = "InvertEdit") -> T:
    """``owner``'s state in the run that ``transformer_options`` belongs to (made by ``make`` on
    first use). ``owner`` is the patch object itself, so two nodes of one kind chained on a model
    keep two states."""
    run = transformer_options.get(RUN_KEY)
    if run is None:
        raise NodeInputError(node, "the model was sampled without the per-run state its patch needs; sample the "
                                   "MODEL this node outputs (a model rebuilt from its patches loses it).")
    state = run.by_owner.get(id(owner))
    if state is None or state[0] is not owner:
        state = run.by_owner[id(owner)] = (owner, make())
    return state[1]
