"""Device hygiene of the sampling path, checked on a CPU.

On a GPU, ``.cpu()`` on one operand, a tensor made without ``device=`` (it lands on the CPU), or
a Python number read from a tensor (``.item()``, ``int(t)``, ``if t:``: the CPU waits for the
GPU) either fails or stalls; on a CPU-only run all of them are silent (issue 23: Attention Store
failed on CUDA only). This watch records each such call made *by the pack's code* while the host's
sampler runs, with its file and line, so a CPU test can fail where a GPU run would.

    with SamplingPathWatch(pack_root) as watch:   # around a workflow run
        ...
    watch.findings   # [(kind, "file:line", code)]

Only calls whose nearest non-torch caller is a file under ``pack_root`` count, and only while
the host's ``CFGGuider.inner_sample`` runs (the sampling path: every model patch, wrapper,
guider and sampler loop of the pack); an output stage before or after it may move tensors to
the CPU. A line may opt out with a comment that contains ``sampling-path-ok:`` and the reason.

The watched functions are replaced by recording wrappers while a sampler runs, and only they: every
other torch call runs untouched (a ``TorchFunctionMode`` over every call, the watch's first form,
added about 4 microseconds to each of them: the Textual Inversion workflow's test took 1.13x the
time under it, measured side by side on 2 CPU cores).
"""
from __future__ import annotations

import functools
import linecache
import sys
from pathlib import Path

import torch

#: Tensor methods (and ``torch.nonzero``) that bring a value to the CPU or make the CPU wait for the device.
_TO_HOST = {"cpu": "cpu()", "numpy": "numpy()", "item": "item()", "tolist": "tolist()", "__int__": "int(tensor)",
            "__float__": "float(tensor)", "__bool__": "bool(tensor)", "__index__": "index(tensor)",
            "nonzero": "nonzero (waits for the device)"}
#: Factories that make a tensor on the default device (the CPU) unless given ``device=``.
_FACTORIES = ("tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "randn", "rand", "randint", "eye",
              "as_tensor", "scalar_tensor")
_TORCH_DIR = str(Path(torch.__file__).parent)
OPT_OUT = "sampling-path-ok:"
_MISSING = object()


class SamplingPathWatch:
    """Records host round trips and CPU-made tensors from ``pack_root``'s code during sampling."""

    def __init__(self, pack_root: Path | str):
        self.root = str(Path(pack_root).resolve())
        self.findings: list[tuple[str, str, str]] = []
        self.sampling = 0
        self._restore = None
        self._unpatch: list = []

    def __enter__(self):
        import comfy.samplers

        original = comfy.samplers.CFGGuider.inner_sample
        watch = self

        def inner_sample(guider, *args, **kwargs):
            if watch.sampling == 0:
                watch._arm()
            watch.sampling += 1
            try:
                return original(guider, *args, **kwargs)
            finally:
                watch.sampling -= 1
                if watch.sampling == 0:
                    watch._disarm()

        comfy.samplers.CFGGuider.inner_sample = inner_sample
        self._restore = lambda: setattr(comfy.samplers.CFGGuider, "inner_sample", original)
        return self

    def __exit__(self, *exc):
        self._disarm()
        self._restore()
        return False

    def _arm(self) -> None:
        """Put the recording wrappers in place (the first sampler to start)."""
        targets = [(torch.Tensor, name, kind, False) for name, kind in _TO_HOST.items()]
        targets += [(torch, "nonzero", _TO_HOST["nonzero"], False)]
        targets += [(torch, name, f"torch.{name} without device=", True) for name in _FACTORIES]
        for owner, name, kind, factory in targets:
            own = owner.__dict__.get(name, _MISSING)
            setattr(owner, name, self._wrap(getattr(owner, name), kind, factory))
            self._unpatch.append((owner, name, own))

    def _disarm(self) -> None:
        while self._unpatch:
            owner, name, own = self._unpatch.pop()
            if own is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, own)

    def _wrap(self, func, kind: str, factory: bool):
        watch = self

        @functools.wraps(func)
        def watched(*args, **kwargs):
            if not factory or kwargs.get("device") is None:
                watch._record(kind)
            return func(*args, **kwargs)

        return watched

    def _record(self, kind: str) -> None:
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename.startswith(_TORCH_DIR)
                                     or frame.f_code.co_filename == __file__):
            frame = frame.f_back
        if frame is None or not frame.f_code.co_filename.startswith(self.root):
            return
        filename, lineno = frame.f_code.co_filename, frame.f_lineno
        line = linecache.getline(filename, lineno).strip()
        if OPT_OUT not in line:
            where = f"{Path(filename).relative_to(self.root.rsplit('/', 1)[0])}:{lineno}"
            self.findings.append((kind, where, line))

    def report(self) -> str:
        seen = sorted(set(self.findings))
        return "\n".join(f"  {where}: {kind}   {line}" for kind, where, line in seen)
