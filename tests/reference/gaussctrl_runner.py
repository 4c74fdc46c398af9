"""GaussCtrl's cross-view attention (ActiveVisionLab/gaussctrl, ``gaussctrl/utils.py``
``CrossViewAttnProcessor``) run unchanged on a diffusers UNet, for the pack's parity test; never
imported by the pack. Run in a subprocess: ``python gaussctrl_runner.py job.pt out.pt`` with the
checkout's ``gaussctrl/`` on PYTHONPATH's first entry.

Adapter (nothing that changes what the reference computes): ``utils.py`` imports torchvision's
``Resize`` and ``InterpolationMode`` at module level for its depth helpers, which the attention
processor never calls; where torchvision is not installed (this project never installs it: it
pulls a CUDA torch) a stand-in module holding two unused names is registered first. The module is
loaded from its file by path (``gaussctrl/__init__.py`` is absent from the repository)."""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch


def load_utils(checkout: Path):
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.Resize = tv.transforms.InterpolationMode = None   # unused by CrossViewAttnProcessor
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tv.transforms
    spec = importlib.util.spec_from_file_location("gaussctrl_utils", checkout / "gaussctrl" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(job_path: str, out_path: str) -> None:
    job = torch.load(job_path, weights_only=False)
    utils = load_utils(Path(job["checkout"]))
    unet = job["unet"]
    unet.set_attn_processor(processor=utils.CrossViewAttnProcessor(self_attn_coeff=job["self_attn_coeff"],
                                                                   unet_chunk_size=2))
    with torch.no_grad():
        out = unet(job["x"], job["t"], encoder_hidden_states=job["context"]).sample
    torch.save({"eps": out}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
