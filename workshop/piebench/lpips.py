"""LPIPS with SqueezeNet 1.1 in torch alone, as PnPInversion's calculator computes it
(``LearnedPerceptualImagePatchSimilarity(net_type='squeeze')`` of torchmetrics, which takes the network from
torchvision; torchvision cannot be installed beside a CPU-only torch, so its ``squeezenet1_1`` features are written
out here from torchvision's definition and load its weights file unchanged).

LPIPS (Zhang et al., CVPR 2018): inputs in -1..1, shifted and scaled (``ScalingLayer``), the seven ReLU outputs of
SqueezeNet's feature slices each unit-normalised over channels (``eps_inside``: torchmetrics' eps by 1.4, else
the lpips package's, which torchmetrics 1.2 had), squared differences, a
learned 1x1 conv per slice (the "lin" heads, v0.1), averaged over space and summed.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], 1)


def squeezenet1_1_features() -> nn.Sequential:
    """torchvision's ``squeezenet1_1().features`` (same indices, so its state dict's ``features.*`` keys load)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))


#: LPIPS's slices of the features (torchmetrics' ``SqueezeNet``) and their channels
SLICES = [range(2), range(2, 5), range(5, 8), range(8, 10), range(10, 11), range(11, 12), range(12, 13)]
CHANNELS = [64, 128, 256, 384, 384, 512, 512]
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def shipped_heads() -> Path | None:
    """The v0.1 squeeze heads inside an installed torchmetrics or lpips package, if any."""
    import importlib.util
    for package, rel in (("torchmetrics", "functional/image/lpips_models/squeeze.pth"), ("lpips", "weights/v0.1/squeeze.pth")):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / rel
            if path.is_file():
                return path
    return None


class SqueezeLpips(nn.Module):
    def __init__(self, squeezenet: str | Path | None = None, heads: str | Path | None = None, device="cpu",
                 eps_inside: bool = True):
        super().__init__()
        self.eps_inside = eps_inside   # torchmetrics by 1.4: x / sqrt(1e-8 + |x|^2); 1.2: x / (|x| + 1e-10)
        features = squeezenet1_1_features()
        if squeezenet is not None:
            path = Path(squeezenet)
            if not path.is_file():
                raise FileNotFoundError(f"--lpips-squeezenet {path}: no such file (torchvision's squeezenet1_1 weights)")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            features.load_state_dict(state)
        self.slices = nn.ModuleList(nn.Sequential(*[features[i] for i in r]) for r in SLICES)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        if squeezenet is not None:
            heads = Path(heads) if heads else shipped_heads()
            if heads is None or not heads.is_file():
                raise FileNotFoundError("no LPIPS v0.1 squeeze heads (--lpips-heads FILE: lpips' weights/v0.1/squeeze.pth;"
                                        " an installed torchmetrics ships it too)")
            lin = torch.load(heads, map_location="cpu", weights_only=True)
            for k, conv in enumerate(self.lins):
                conv.weight.data.copy_(lin[f"lin{k}.model.1.weight"])
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None], persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None], persistent=False)
        self.to(device).eval()
        self.device = device

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        if self.eps_inside:
            return x / torch.sqrt(1e-8 + torch.sum(x ** 2, dim=1, keepdim=True))
        return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + 1e-10)

    @torch.no_grad()
    def distance(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        """LPIPS of ``[B, 3, H, W]`` images in -1..1: ``[B]``."""
        x0, x1 = (in0 - self.shift) / self.scale, (in1 - self.shift) / self.scale
        total = 0
        for sl, lin in zip(self.slices, self.lins):
            x0, x1 = sl(x0), sl(x1)
            f0, f1 = self._unit(x0), self._unit(x1)
            total = total + lin((f0 - f1) ** 2).mean([2, 3], keepdim=True)
        return total.reshape(in0.shape[0])

    def measure(self, img_pred, img_gt, mask_pred=None, mask_gt=None) -> float:
        """``calculate_lpips``: the masked 0..1 images mapped to -1..1."""
        from .metrics import _pair
        p, g = _pair(img_pred, img_gt, mask_pred, mask_gt)
        return float(self.distance(p.to(self.device) * 2 - 1, g.to(self.device) * 2 - 1).mean())
