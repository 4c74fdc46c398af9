"""The per-run state of the pack's patches (``hostkit/run_state.py``): one object per patch and
sampling run, shared by every model call of the run, new in the next run, none outside a run."""
import importlib

import pytest
import torch


def kit_of(host):
    return importlib.import_module(f"{host.pack.__name__}.hostkit.run_state")


def test_each_run_has_its_own_state_shared_by_its_steps(host, tiny):
    kit = kit_of(host)
    model, clip, _ = tiny("sd1")
    seen: list = []

    class Counter:
        def __init__(self):
            self.calls = 0

    class Patch:
        def __call__(self, apply, args):
            state = kit.run_state(args["c"]["transformer_options"], self, Counter)
            state.calls += 1
            seen.append((id(state), state.calls))
            return apply(args["input"], args["timestep"], **args["c"])

    m = model.clone()
    patch = Patch()
    m.set_model_unet_function_wrapper(patch)
    kit.keep_run_state(m)
    kit.keep_run_state(m)   # once per model, however many patches ask
    assert len(m.get_wrappers("outer_sample", kit.RUN_KEY)) == 1
    cond = host.nodes.CLIPTextEncode().encode(clip, "a cat")[0]
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    for _ in range(2):
        host.nodes.common_ksampler(m, 0, 3, 1.0, "euler", "normal", cond, cond, latent)
    runs = {}
    for state, calls in seen:
        runs.setdefault(state, []).append(calls)
    assert list(runs.values()) == [[1, 2, 3], [1, 2, 3]], "one state per run, shared by the run's three steps"


def test_a_patch_sampled_outside_a_run_state_is_refused_by_name(host):
    kit = kit_of(host)
    with pytest.raises(host.pack.hostkit.errors.NodeInputError, match="SEGA Guidance.*per-run state"):
        kit.run_state({}, object(), dict, node="SEGA Guidance")
