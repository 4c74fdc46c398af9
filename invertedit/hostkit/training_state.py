"""A training run's state on disk, so that an interrupted run goes on where it stopped (diffusers'
training scripts: ``--checkpointing_steps`` and ``--resume_from_checkpoint``).

One file per name, ``output/invertedit/training/<name>.safetensors``: the trained tensors under their
keys (the LoRA's or the patch's), Adam's two moments of each (``exp_avg.<key>``,
``exp_avg_sq.<key>``), and in the metadata the steps done and the run's settings. A run given a
name whose file exists starts from it, if it was made with the same settings (model, images,
prompts, seed, learning rate, ...; ``steps`` may grow); it replays the earlier steps' random draws
(batches, noise, timesteps) without the model, so that the resumed run ends where an unbroken one
would. The file is written every ``KEEP_EVERY`` steps, after the last step, and when a step is
interrupted (the host's Cancel) or fails.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Optional

import folder_paths
import safetensors.torch
import torch

from .errors import NodeInputError

SUBFOLDER = "invertedit/training"
KEEP_EVERY = 500   # diffusers' scripts' --checkpointing_steps default
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def state_path(node: str, name: str) -> Path:
    """Where the state called ``name`` lives; refuses a name that is not a plain file name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise NodeInputError(node, f"input 'state_name' is {name!r}; give a plain name of letters, digits, '_', '-' "
                                   f"or '.' (not starting with '.'), at most 100 characters, e.g. 'my_subject' "
                                   f"(the file: output/{SUBFOLDER}/<name>.safetensors), or leave it empty.")
    return Path(folder_paths.get_output_directory()) / SUBFOLDER / f"{name}.safetensors"


class TrainingState:
    """The state file of one run: ``load`` before training, ``keep`` as ``optimize``'s keep hook."""

    def __init__(self, node: str, name: str, settings: dict[str, object]):
        self.node, self.name, self.path = node, name, state_path(node, name)
        self.settings = {k: (round(v, 12) if isinstance(v, float) else v) for k, v in settings.items()}
        self.keys: list[str] = []
        self.params: list[torch.Tensor] = []

    def load(self, shapes: dict[str, torch.Size], steps: int) -> Optional[tuple[int, dict[str, torch.Tensor], list]]:
        """(steps done, the trained tensors by key, Adam's moments in ``shapes``' order) of the file,
        or None where there is none. Refuses a file of other settings, other tensors, or more steps
        than ``steps``."""
        if not self.path.is_file():
            return None
        fix = f"give another 'state_name', or delete output/{SUBFOLDER}/{self.path.name} to start afresh"
        try:
            with safetensors.safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            done, saved = int(meta["steps_done"]), json.loads(meta["settings"])
        except Exception as e:   # noqa: BLE001  (any unreadable file is refused the same way)
            raise NodeInputError(self.node, f"input 'state_name': output/{SUBFOLDER}/{self.path.name} is not a "
                                            f"training state this node wrote ({type(e).__name__}); {fix}.") from e
        differ = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
        if differ:
            said = "; ".join(f"{k}: {saved.get(k)!r} then, {self.settings.get(k)!r} now" for k in differ)
            raise NodeInputError(self.node, f"input 'state_name': the run saved as '{self.name}' had other settings "
                                            f"({said}); resume with the same model, images, prompts and settings "
                                            f"(only 'steps' may change), or {fix}.")
        wanted = {k: tuple(v) for k, v in shapes.items()}
        found = {k: tuple(v.shape) for k, v in tensors.items() if not k.startswith("exp_avg")}
        if found != wanted:
            raise NodeInputError(self.node, f"input 'state_name': the run saved as '{self.name}' trained other tensors "
                                            f"({len(found)}, this run {len(wanted)}); {fix}.")
        if done > steps:
            raise NodeInputError(self.node, f"input 'state_name': the run saved as '{self.name}' has done {done} steps, "
                                            f"more than 'steps' ({steps}); set 'steps' to {done} or more, or {fix}.")
        moments = [(tensors[f"exp_avg.{k}"], tensors[f"exp_avg_sq.{k}"]) for k in shapes]
        return done, {k: tensors[k] for k in shapes}, moments

    def track(self, keys: list[str], params: list[torch.Tensor]) -> None:
        """The tensors ``keep`` writes, under ``keys``."""
        self.keys, self.params = list(keys), list(params)

    def keep(self, done: int, moments: list) -> None:
        """Write the tracked tensors and ``moments`` after ``done`` steps (replacing the file whole)."""
        def on_disk(t: torch.Tensor) -> torch.Tensor:   # the file is written from the CPU: one copy a tensor
            return t.detach().to(device="cpu", dtype=torch.float32).contiguous()  # sampling-path-ok: the state file, every KEEP_EVERY steps and at the end

        out: dict[str, torch.Tensor] = {}
        for key, param, (exp_avg, exp_avg_sq) in zip(self.keys, self.params, moments, strict=True):
            out[key], out[f"exp_avg.{key}"], out[f"exp_avg_sq.{key}"] = map(on_disk, (param, exp_avg, exp_avg_sq))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        safetensors.torch.save_file(out, str(partial),
                                    metadata={"steps_done": str(done), "settings": json.dumps(self.settings)})
        os.replace(partial, self.path)


def resumable_run(node: str, name: str, settings: Callable[[], dict[str, object]]) -> Optional[TrainingState]:
    """The run's state file where ``name`` is given (None where it is empty); ``settings()``: what must
    match for a run to go on from it (fingerprints of the model, images and prompts, the settings),
    computed only where there is a name (a fingerprint reads tensors)."""
    if not (name or "").strip():
        return None
    return TrainingState(node, name.strip(), dict(settings(), node=node))


def resume_into(state: Optional[TrainingState], tensors: dict[str, torch.Tensor], steps: int) -> tuple[int, Optional[list]]:
    """Start ``tensors`` (the trained ones, by key, in training order) from the state file where it
    exists: (steps done, Adam's moments), else (0, None)."""
    found = None if state is None else state.load({k: t.shape for k, t in tensors.items()}, steps)
    if found is None:
        return 0, None
    done, values, moments = found
    for key, tensor in tensors.items():   # an inference tensor (made under the node's inference mode) in it
        with torch.inference_mode(tensor.is_inference()), torch.no_grad():
            tensor.copy_(values[key])
    return done, moments


STATE_TOOLTIP = ("Empty: no state file. A name: the run's state (what it trains and the optimiser's moments) is kept "
                 "in output/invertedit/training/<name>.safetensors every 500 steps (diffusers' scripts' "
                 "--checkpointing_steps), at the end and when the run is cancelled; a run with the same name, inputs "
                 "and settings goes on from there and ends as an unbroken run would ('steps' may be raised to train "
                 "on).")
