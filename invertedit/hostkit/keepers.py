"""What an inversion keeps for a later editor: the registry of keepers.

An editor that needs something recorded while the image is inverted (RF-Solver-Edit's attention
values, KV-Edit's keys and values) registers a ``Keeper`` from its technique's glue: the inputs it
shows on the flow inverter, a check of their values, and a ``Keeping`` for one inversion (the policy
it installs on the inverter's model, the settings and clues it adds to the record). The inverter
shows every registered keeper's inputs and runs the keepings they turn on, so it names no editor,
and an editor that keeps something touches its own folder only.

Keepers register when their technique's glue is imported; the extension imports the techniques in
the table's order, which is the order of their inputs on the node. An input two keepers show
(``keep_values_on``: where kept tensors wait) is shown once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import comfy.model_management
import torch
from comfy_api.latest import io

from ..inversion.methods import Method
from .errors import NodeInputError, check_choice


@dataclass(frozen=True)
class KeepRequest:
    """What a keeper is asked to keep for: the inverter's node, the model it inverts with, the
    image's latent, the steps, the inversion method and the inverter's own settings, and the values
    of every keeper input (missing ones at their defaults)."""
    node: str
    model: object
    samples: torch.Tensor
    steps: int
    method: Method
    settings: dict
    inputs: dict


class Keeping(Protocol):
    """One inversion's keeping: ``install`` on the inverter's model (a clone), ``settings`` for the
    record, and the ``clues`` it kept once the inversion has run."""

    def install(self, velocity) -> None: ...

    def settings(self) -> dict: ...

    def clues(self) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class Keeper:
    """An editor's keeper: ``what`` it keeps (for messages) when its ``switch`` input is on (a true
    value); ``inputs()`` the node inputs it shows (fresh ones each call), ``defaults`` their values
    when a prompt leaves them out; ``check(node, values)`` refuses values that cannot go together,
    before any work; ``start(request)`` the keeping of one inversion, after its own checks."""
    what: str
    switch: str
    inputs: Callable[[], list]
    defaults: dict
    check: Callable[[str, dict], None]
    start: Callable[[KeepRequest], Keeping]

    def on(self, values: dict) -> bool:
        return bool(values.get(self.switch))


_KEEPERS: list[Keeper] = []


def register_keeper(keeper: Keeper) -> Keeper:
    """Add ``keeper`` (once) to the keepers every flow inversion asks."""
    if keeper not in _KEEPERS:
        _KEEPERS.append(keeper)
    return keeper


def keepers() -> tuple[Keeper, ...]:
    return tuple(_KEEPERS)


def keeper_inputs() -> list:
    """The inputs of every registered keeper, in registration order, each name once."""
    seen, inputs = set(), []
    for keeper in _KEEPERS:
        for spec in keeper.inputs():
            if spec.id not in seen:
                seen.add(spec.id)
                inputs.append(spec)
    return inputs


# where kept tensors wait (the ``keep_values_on`` input keepers share), and in what: the model's dtype, or fp8
# (e4m3fn, clamped to its range: half a bfloat16 cache; the error measured in docs/measurements.md)
PLACES = ("device", "cpu", "device, fp8", "cpu, fp8")
FP8_MAX = 448.0   # float8_e4m3fn's largest value


def place_device(place: str) -> str:
    """"device" or "cpu": where a ``keep_values_on`` value keeps tensors."""
    return place.split(",")[0]


def stored_bytes(place: str) -> int | None:
    """Bytes a kept value takes with ``keep_values_on`` ``place`` (None: the model's dtype's)."""
    return 1 if place.endswith("fp8") else None


def place_input():
    """The input where kept tensors wait, which keepers share."""
    return io.Combo.Input("keep_values_on", options=list(PLACES), default="device", optional=True,
                          tooltip="Where what the inversion keeps for an editor (attention values, keys and values) "
                                  "waits: device (the model's: no copies) or cpu (the authors' code: saves GPU memory; "
                                  "KV-Edit copies each block's back one block call ahead, Share Values copies and "
                                  "waits per block call). ', fp8': kept in 8 bits (float8 e4m3), half a bfloat16 "
                                  "model's memory, at a small error (docs/measurements.md).")


def keeper_values(given: dict) -> dict:
    """Every keeper input's value: ``given`` over the keepers' defaults."""
    values = {"keep_values_on": "device"}
    for keeper in _KEEPERS:
        values.update(keeper.defaults)
    return {**values, **{name: value for name, value in given.items() if name in values}}


def check_keeper_values(node: str, values: dict) -> None:
    """The keeper inputs' checks, before any work: where kept tensors wait, and each keeper's own."""
    check_choice(node, "keep_values_on", values["keep_values_on"], PLACES)
    for keeper in _KEEPERS:
        keeper.check(node, values)


def keepings(request: KeepRequest) -> list[Keeping]:
    """The keepings ``request``'s keeper inputs turn on: at most one (an inversion keeps for one editor)."""
    on = [keeper for keeper in _KEEPERS if keeper.on(request.inputs)]
    if len(on) > 1:
        a, b = on[:2]
        raise NodeInputError(request.node, f"inputs '{a.switch}' and '{b.switch}' are both on; an inversion keeps "
                                           f"{a.what} or {b.what}: turn one off.")
    return [keeper.start(request) for keeper in on]


def keep_on(place: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """How a policy that keeps attention tensors across a run keeps them: on the model's device
    ("device": a clone, no copy to the host, no wait) or on the CPU ("cpu": the authors' offload,
    which saves GPU memory at a copy per block call; KV-Edit's ``prefetch.AheadOfUse`` makes it a block
    call ahead, from pinned memory); with ", fp8" cast to float8 e4m3fn first (clamped to its range;
    a reader casts back to its own dtype)."""
    keep = _to_host if place_device(place) == "cpu" else torch.Tensor.clone
    if stored_bytes(place) is None:
        return keep
    if place_device(place) == "device":
        return _to_fp8
    return lambda t: _to_host(_to_fp8(t))


def _to_fp8(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)


def _to_host(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` on the host's intermediate device; from a CUDA device into pinned memory, so that
    copying it back can run beside the compute (KV-Edit's ``prefetch.AheadOfUse``). The copy out waits for
    the device: the tensor is whole before anything reads it."""
    target = comfy.model_management.intermediate_device()
    if t.device.type == "cuda" and target.type == "cpu":
        return torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t)  # sampling-path-ok: the opt-in offload (keep_values_on cpu)
    return t.to(device=target, copy=True)  # sampling-path-ok: the opt-in offload (keep_values_on cpu)
