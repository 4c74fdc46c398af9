"""Device hygiene of the sampling path, checked on a CPU.

On a GPU, ``.cpu()`` on one operand, a tensor made without ``device=`` (it lands on the CPU), or
a Python number read from a tensor (``.item()``, ``int(t)``, ``if t:``: the CPU waits for the
GPU) either fails or stalls; on a CPU-only run all of them are silent (issue 23: Attention Store
failed on CUDA only). This mode watches torch calls made *by the pack's code* while the host's
sampler runs and records each such call with its file and line, so a CPU test can fail where a
GPU run would.

    with SamplingPathWatch(pack_root) as watch:   # around a workflow run
        ...
    watch.findings   # [(kind, "file:line", code)]

Only calls whose nearest non-torch caller is a file under ``pack_root`` count, and only while
the host's ``CFGGuider.inner_sample`` runs (the sampling path: every model patch, wrapper,
guider and sampler loop of the pack); an output stage before or after it may move tensors to
the CPU. A line may opt out with a comment that contains ``sampling-path-ok:`` and the reason.
"""
from __future__ import annotations

import linecache
import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

#: Tensor methods that bring a value to the CPU or make the CPU wait for the device.
_TO_HOST = {torch.Tensor.cpu: "cpu()", torch.Tensor.numpy: "numpy()", torch.Tensor.item: "item()",
            torch.Tensor.tolist: "tolist()", torch.Tensor.__int__: "int(tensor)",
            torch.Tensor.__float__: "float(tensor)", torch.Tensor.__bool__: "bool(tensor)",
            torch.Tensor.__index__: "index(tensor)", torch.nonzero: "nonzero (waits for the device)",
            torch.Tensor.nonzero: "nonzero (waits for the device)"}
#: Factories that make a tensor on the default device (the CPU) unless given ``device=``.
_FACTORIES = {getattr(torch, n) for n in ("tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "randn",
                                            "rand", "randint", "eye", "as_tensor", "scalar_tensor")}
_TORCH_DIR = str(Path(torch.__file__).parent)
OPT_OUT = "sampling-path-ok:"


class SamplingPathWatch(TorchFunctionMode):
    """Records host round trips and CPU-made tensors from ``pack_root``'s code during sampling."""

    def __init__(self, pack_root: Path | str):
        super().__init__()
        self.root = str(Path(pack_root).resolve())
        self.findings: list[tuple[str, str, str]] = []
        self.sampling = 0
        self._restore = None

    def __enter__(self):
        import comfy.samplers

        original = comfy.samplers.CFGGuider.inner_sample
        watch = self

        def inner_sample(guider, *args, **kwargs):
            watch.sampling += 1
            try:
                return original(guider, *args, **kwargs)
            finally:
                watch.sampling -= 1

        comfy.samplers.CFGGuider.inner_sample = inner_sample
        self._restore = lambda: setattr(comfy.samplers.CFGGuider, "inner_sample", original)
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self._restore()

    def _caller(self) -> tuple[str, int] | None:
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename.startswith(_TORCH_DIR)
                                     or frame.f_code.co_filename == __file__):
            frame = frame.f_back
        if frame is None:
            return None
        return frame.f_code.co_filename, frame.f_lineno

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.sampling:
            kind = _TO_HOST.get(func)
            if kind is None and func in _FACTORIES and kwargs.get("device") is None:
                kind = f"torch.{func.__name__} without device="
            if kind is not None:
                caller = self._caller()
                if caller is not None and caller[0].startswith(self.root):
                    line = linecache.getline(caller[0], caller[1]).strip()
                    if OPT_OUT not in line:
                        where = f"{Path(caller[0]).relative_to(self.root.rsplit('/', 1)[0])}:{caller[1]}"
                        self.findings.append((kind, where, line))
        return func(*args, **kwargs)

    def report(self) -> str:
        seen = sorted(set(self.findings))
        return "\n".join(f"  {where}: {kind}   {line}" for kind, where, line in seen)
