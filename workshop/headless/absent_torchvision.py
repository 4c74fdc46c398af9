"""A stand-in for torchvision on machines that cannot have it.

ComfyUI imports torchvision when it starts (for the Stable Cascade, Cosmos and ACE model
code), but no torchvision wheel on PyPI works with a CPU-only torch (its compiled ops need
CUDA torch, and installing it pulls several GB of CUDA packages). This pack and everything
our headless runner executes use none of torchvision. Only when torchvision cannot be
imported, ``install()`` registers a module whose every use raises a clear error, so the
host can start; a real ComfyUI installation has torchvision and never sees this.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import sys
import types


class _Absent(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Absent(f"{self.__name__}.{name}")
        setattr(self, name, child)
        return child

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f"{self.__name__} was called, but torchvision is not installed on this machine "
            "(the headless runner started ComfyUI without it; install torchvision to use this model)."
        )


def install() -> bool:
    """Register the stand-in if torchvision cannot be imported. Returns True if it did."""
    if "torchvision" in sys.modules:
        return False
    if importlib.util.find_spec("torchvision") is not None:
        try:
            import torchvision  # noqa: F401
            return False
        except Exception:  # a CUDA-only wheel on a CPU torch fails here
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
    # Libraries that probe for torchvision once, at import, should see it missing.
    for probe in ("transformers.utils.import_utils", "diffusers.utils.import_utils"):
        try:
            importlib.import_module(probe)
        except Exception:
            pass
    try:   # torchmetrics asks once, lazily, and keeps the answer: ask before the stand-in exists
        bool(importlib.import_module("torchmetrics.utilities.imports")._TORCHVISION_AVAILABLE)
    except Exception:
        pass
    root = _Absent("torchvision")
    root.__path__ = []
    for module in (root, root.transforms):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
        sys.modules[module.__name__] = module
    logging.warning("torchvision is not importable here: ComfyUI runs with a stand-in that raises on use "
                    "(only Stable Cascade, Cosmos and ACE model code needs it).")
    return True
