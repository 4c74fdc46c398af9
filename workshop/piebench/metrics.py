"""PnPInversion's PIE-Bench metrics (``evaluation/matrics_calculator.py`` and ``evaluate.py``'s
``calculate_metric``), computed as their code computes them.

Their calculator wraps torchmetrics (PSNR, MSE, SSIM, CLIPScore, LPIPS) and a DINO ViT-B/8 key self-similarity
("structure distance", from Splice). Here:

- PSNR, MSE, SSIM (no weights) are the torchmetrics computations written out in torch (``_psnr_update/_compute``,
  ``_mean_squared_error_update/_compute``, ``_ssim_update``: a Gaussian window of 11 px, sigma 1.5, the image
  reflect-padded by 5 px; the SSIM map's 5-px border left out of the mean as torchmetrics did up to 1.4, when
  PnPInversion published, or kept as from 1.5: ``AS_OF``) on their inputs: the
  image as float32 in 0..1, multiplied by the mask (``1 - mask`` for the "unedit part", so the edited region and the
  border rows/columns ``mask_decode`` marks are zero in both images and count as equal pixels), in float32.
  ``tests/pure/test_piebench_metrics.py`` checks them against torchmetrics and PnPInversion's own calculator.
- CLIP similarity (``CLIPScore("openai/clip-vit-large-patch14")``: 100 x the cosine of image and text embeddings,
  floored at 0; the "edit part" multiplies the uint8 image by the mask first) with transformers' CLIPModel from a
  local copy of that model (``--clip DIR``).
- Structure distance (DINO ViT-B/8, layer 11's keys, the MSE of their token self-similarity matrices) with
  transformers' ViTModel from a local copy of ``facebook/dino-vitb8`` (``--dino DIR``). As their code does, the
  image goes in as float 0..255 (not 0..1), resized to 224 (torchvision's ``Resize(224, max_size=480)`` on a
  tensor: bilinear, antialiased from torchvision 0.17 on, not before: ``AS_OF``) and normalised with ImageNet's
  0..1 mean and std: the published numbers come from that input, so it is kept.
- LPIPS: their calculator builds ``LearnedPerceptualImagePatchSimilarity(net_type='squeeze')`` (SqueezeNet 1.1,
  not AlexNet), which needs torchvision's SqueezeNet weights; written here in torch alone (``lpips.py``) from
  torchvision's ``squeezenet1_1`` weights file (``--lpips-squeezenet FILE``) and the LPIPS linear heads shipped
  inside the lpips / torchmetrics packages (``--lpips-heads FILE``; found in an installed torchmetrics if not given).

A metric whose weights are not given is not computed: its column says ``skipped: <why>`` and the run logs it loudly.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: ``evaluate.py``'s default ``--metrics``, in its order
METRICS = [
    "structure_distance",
    "psnr_unedit_part",
    "lpips_unedit_part",
    "mse_unedit_part",
    "ssim_unedit_part",
    "clip_similarity_source_image",
    "clip_similarity_target_image",
    "clip_similarity_target_image_edit_part",
]
#: the paper's table (PnP Inversion, Table 1) from those columns: (heading, metric, scale)
TABLE = [
    ("Structure Distance (x10^3)", "structure_distance", 1e3),
    ("Background PSNR", "psnr_unedit_part", 1.0),
    ("Background LPIPS (x10^3)", "lpips_unedit_part", 1e3),
    ("Background MSE (x10^4)", "mse_unedit_part", 1e4),
    ("Background SSIM (x10^2)", "ssim_unedit_part", 1e2),
    ("CLIP Similarity Whole", "clip_similarity_target_image", 1.0),
    ("CLIP Similarity Edited", "clip_similarity_target_image_edit_part", 1.0),
]
#: the metrics that need weights, by the start of their names
WEIGHTED = ("structure", "lpips", "clip")


class Skipped(Exception):
    """A metric that cannot be computed here; the message says why (shown in its column)."""


def _prepared(img, mask, scale: bool = True) -> np.ndarray:
    """Their calculators' first lines: ``np.array(img).astype(np.float32)/255`` (or without /255 for the structure
    distance), times ``np.array(mask).astype(np.float32)`` when a mask is given."""
    a = np.array(img).astype(np.float32)
    if scale:
        a = a / 255
    if mask is not None:
        a = a * np.array(mask).astype(np.float32)
    return a


def _pair(img_pred, img_gt, mask_pred, mask_gt, scale: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _prepared(img_pred, mask_pred, scale), _prepared(img_gt, mask_gt, scale)
    assert p.shape == g.shape, "Image shapes should be the same."
    return torch.tensor(p).permute(2, 0, 1).unsqueeze(0), torch.tensor(g).permute(2, 0, 1).unsqueeze(0)


def psnr(img_pred, img_gt, mask_pred=None, mask_gt=None) -> float:
    """``calculate_psnr``: torchmetrics' ``PeakSignalNoiseRatio(data_range=1.0)`` on one pair, in float32."""
    p, g = _pair(img_pred, img_gt, mask_pred, mask_gt)
    sse = torch.sum(torch.pow(p - g, 2))
    n = torch.tensor(g.numel())
    data_range = torch.tensor(1.0)
    value = (2 * torch.log(data_range) - torch.log(sse / n)) * (10 / torch.log(torch.tensor(10.0)))
    return float(value)


def mse(img_pred, img_gt, mask_pred=None, mask_gt=None) -> float:
    """``calculate_mse``: torchmetrics' ``MeanSquaredError()`` on one pair (every pixel of every channel)."""
    p, g = _pair(img_pred, img_gt, mask_pred, mask_gt)
    diff = p - g
    return float(torch.sum(diff * diff) / torch.tensor(g.numel()))


def _gaussian(size: int, sigma: float) -> torch.Tensor:
    dist = torch.arange(start=(1 - size) / 2, end=(1 + size) / 2, step=1, dtype=torch.float32)
    gauss = torch.exp(-torch.pow(dist / sigma, 2) / 2)
    return (gauss / gauss.sum()).unsqueeze(0)


#: the libraries PnPInversion's calculator calls, as they were when it released its evaluation (October 2023: its
#: requirement files pin none; torchmetrics 1.2, torchvision 0.13-0.16) or as they are now (torchmetrics 1.9,
#: torchvision 0.17+). SSIM: torchmetrics up to 1.4 left the map's 5-px border (the padding's reach) out of the
#: mean, from 1.5 the whole map is averaged; by 1.4 the windows' variances are clamped at 0. LPIPS: 1.2 normalised
#: features by ``norm + 1e-10`` (the lpips package's), 1.9 by ``sqrt(norm^2 + 1e-8)``. DINO's input: torchvision's
#: ``Resize`` on a tensor did not antialias before 0.17, does since. PSNR, MSE and CLIPScore are the same.
AS_OF = ("2023", "current")
DEFAULT_AS_OF = "2023"


def ssim_map(p: torch.Tensor, g: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5, k1: float = 0.01,
             k2: float = 0.03, clamp: bool = True) -> torch.Tensor:
    """torchmetrics' ``_ssim_update`` (Gaussian window) on ``[B, C, H, W]``: the per-pixel SSIM ``[B, C, H, W]``
    of the reflect-padded images (no border cropped); ``clamp``: variances clamped at 0 (torchmetrics by 1.4; 1.2 did not)."""
    channel = p.size(1)
    size = int(3.5 * sigma + 0.5) * 2 + 1
    pad = (size - 1) // 2
    c1, c2 = pow(k1 * data_range, 2), pow(k2 * data_range, 2)
    p = F.pad(p, (pad, pad, pad, pad), mode="reflect")
    g = F.pad(g, (pad, pad, pad, pad), mode="reflect")
    kx = _gaussian(size, sigma)
    kernel = torch.matmul(kx.t(), kx).expand(channel, 1, size, size).to(p.dtype)
    out = F.conv2d(torch.cat((p, g, p * p, g * g, p * g)), kernel, groups=channel).split(p.shape[0])
    mu_p_sq, mu_g_sq, mu_pg = out[0].pow(2), out[1].pow(2), out[0] * out[1]
    s_p, s_g = out[2] - mu_p_sq, out[3] - mu_g_sq
    if clamp:
        s_p, s_g = torch.clamp(s_p, min=0.0), torch.clamp(s_g, min=0.0)
    s_pg = out[4] - mu_pg
    upper = 2 * s_pg + c2
    lower = s_p + s_g + c2
    return ((2 * mu_pg + c1) * upper) / ((mu_p_sq + mu_g_sq + c1) * lower)


def ssim(img_pred, img_gt, mask_pred=None, mask_gt=None, as_of: str = DEFAULT_AS_OF) -> float:
    """``calculate_ssim``: torchmetrics' ``StructuralSimilarityIndexMeasure(data_range=1.0)`` on one pair, as
    torchmetrics computed it ``as_of`` (``AS_OF``)."""
    p, g = _pair(img_pred, img_gt, mask_pred, mask_gt)
    old = as_of == "2023"
    full = ssim_map(p, g, clamp=not old)
    if old:   # torchmetrics <= 1.4: the border the padding reaches is left out of the mean
        full = full[..., SSIM_PAD:-SSIM_PAD, SSIM_PAD:-SSIM_PAD]
    return float(full.reshape(full.shape[0], -1).mean(-1)[0])


SSIM_PAD = 5   # (int(3.5 * 1.5 + 0.5) * 2 + 1 - 1) // 2: the Gaussian window's reach


# ----------------------------------------------------------------------------- the weighted metrics

class ClipScore:
    """torchmetrics' ``CLIPScore`` on one image and one text, with transformers' CLIPModel from ``path`` (a local
    copy of openai/clip-vit-large-patch14, the model their calculator names)."""

    def __init__(self, path, device="cpu"):
        from transformers import CLIPModel, CLIPProcessor
        self.model = CLIPModel.from_pretrained(str(path)).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(str(path))
        self.device = device

    @staticmethod
    def _features(out) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output   # transformers 5 returns an output object

    @torch.no_grad()
    def __call__(self, img, txt: str, mask=None) -> float:
        img = np.array(img)
        if mask is not None:
            img = np.uint8(img * np.array(mask))
        image = torch.tensor(img).permute(2, 0, 1)
        pixels = self.processor(images=[image], return_tensors="pt", padding=True)["pixel_values"]
        img_f = self._features(self.model.get_image_features(pixels.to(self.device)))
        text = self.processor(text=[txt], return_tensors="pt", padding=True)
        n = self.model.config.text_config.max_position_embeddings
        ids, att = text["input_ids"][..., :n], text["attention_mask"][..., :n]   # torchmetrics truncates so
        txt_f = self._features(self.model.get_text_features(ids.to(self.device), att.to(self.device)))
        img_f = img_f / img_f.norm(p=2, dim=-1, keepdim=True)
        txt_f = txt_f / txt_f.norm(p=2, dim=-1, keepdim=True)
        score = 100 * (img_f * txt_f).sum(axis=-1)
        return float(torch.clamp(score[0], min=0.0))   # CLIPScore.compute: max(score, 0)


class DinoStructure:
    """``LossG.calculate_global_ssim_loss`` with DINO ViT-B/8 (``facebook/dino-vitb8`` through transformers'
    ViTModel): layer 11's keys (the heads concatenated, the class token included), their cosine self-similarity
    ``[N, N]``, and the MSE between the two images' matrices."""

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, path, device="cpu", layer: int = 11, antialias: bool = False):
        from transformers import ViTModel
        self.antialias = antialias
        # DINO's LayerNorms use eps 1e-6 (vision_transformer.py), whatever the converted config says
        self.model = ViTModel.from_pretrained(str(path), add_pooling_layer=False, layer_norm_eps=1e-6).to(device).eval()
        self.device = device
        blocks = getattr(self.model, "layers", None) or self.model.encoder.layer
        attn = blocks[layer].attention
        self.key = getattr(attn, "k_proj", None) or attn.attention.key

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision's ``Resize(224, max_size=480)`` (shorter side 224, bilinear; ``antialias`` as torchvision
        0.17+ does on tensors) and ``Normalize(ImageNet)`` on the float 0..255 image, as their code feeds it."""
        h, w = x.shape[-2:]
        short, long = min(h, w), max(h, w)
        new_short, new_long = 224, int(224 * long / short)
        if new_long > 480:
            new_short, new_long = int(480 * new_short / new_long), 480
        size = (new_short, new_long) if h <= w else (new_long, new_short)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                          antialias=getattr(self, "antialias", False))
        mean = torch.tensor(self.MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def keys_self_sim(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``VitExtractor.get_keys_self_sim_from_input`` on a transformed ``[1, 3, H, W]`` image: the layer's keys
        ``[N, D]`` (the heads side by side, the class token first) and their cosine similarities ``[N, N]``
        (``attn_cosine_sim``, eps 1e-8)."""
        got = {}
        handle = self.key.register_forward_hook(lambda m, i, o: got.setdefault("k", o))
        try:
            # at the model's own size (224) the position embedding is used as is; other sizes interpolate it
            self.model(pixel_values=pixel_values.to(self.device), interpolate_pos_encoding=True)
        finally:
            handle.remove()
        keys = got["k"][0]
        norm = keys.norm(dim=1, keepdim=True)
        factor = torch.clamp(norm @ norm.t(), min=1e-08)
        return (keys @ keys.t()) / factor

    def self_sim(self, x: torch.Tensor) -> torch.Tensor:
        return self.keys_self_sim(self._transform(x))

    def __call__(self, img_pred, img_gt, mask_pred=None, mask_gt=None) -> float:
        p, g = _pair(img_pred, img_gt, mask_pred, mask_gt, scale=False)
        return float(F.mse_loss(self.self_sim(p), self.self_sim(g)))


class Calculator:
    """The metrics of one run: the weight-free ones always, the others where their weights were given
    (``clip``, ``dino``: model folders; ``lpips``: ``(squeezenet file, heads file or None)``); ``skipped``
    says why each missing one is missing."""

    def __init__(self, clip=None, dino=None, lpips=None, device="cpu", as_of: str = DEFAULT_AS_OF):
        if as_of not in AS_OF:
            raise SystemExit(f"--as-of {as_of}: one of {', '.join(AS_OF)}")
        self.as_of = as_of
        self.skipped: dict[str, str] = {}
        self.clip = self.dino = self.lpips = None
        if clip:
            self.clip = ClipScore(clip, device)
        else:
            self.skipped["clip"] = "no CLIP ViT-L/14 weights (--clip)"
        if dino:
            self.dino = DinoStructure(dino, device, antialias=as_of != "2023")
        else:
            self.skipped["structure"] = "no DINO ViT-B/8 weights (--dino)"
        if lpips and lpips[0]:
            from .lpips import SqueezeLpips
            try:
                self.lpips = SqueezeLpips(lpips[0], lpips[1], device, eps_inside=as_of != "2023")
            except FileNotFoundError as e:
                self.skipped["lpips"] = str(e)
        else:
            self.skipped["lpips"] = "no SqueezeNet 1.1 weights (--lpips-squeezenet)"

    def why_skipped(self, metric: str) -> str | None:
        return next((self.skipped[part] for part in WEIGHTED if metric.startswith(part) and part in self.skipped), None)

    def calculate(self, metric: str, src_image, tgt_image, src_mask, tgt_mask, src_prompt: str, tgt_prompt: str):
        """``evaluate.py``'s ``calculate_metric``: the same metrics, masks and "nan" rules (a part with no pixels).
        Raises ``Skipped`` for a metric whose weights are absent."""
        why = self.why_skipped(metric)
        if why is not None:
            raise Skipped(why)
        def ssim_(*a):
            return ssim(*a, as_of=self.as_of)

        fns = {"psnr": psnr, "mse": mse, "ssim": ssim_, "lpips": self.lpips and self.lpips.measure,
               "structure_distance": self.dino}
        for name, fn in fns.items():
            if metric == name:
                return fn(src_image, tgt_image, None, None)
            if metric == f"{name}_unedit_part":
                if (1 - src_mask).sum() == 0 or (1 - tgt_mask).sum() == 0:
                    return "nan"
                return fn(src_image, tgt_image, 1 - src_mask, 1 - tgt_mask)
            if metric == f"{name}_edit_part":
                if src_mask.sum() == 0 or tgt_mask.sum() == 0:
                    return "nan"
                return fn(src_image, tgt_image, src_mask, tgt_mask)
        if metric == "clip_similarity_source_image":
            return self.clip(src_image, src_prompt, None)
        if metric == "clip_similarity_target_image":
            return self.clip(tgt_image, tgt_prompt, None)
        if metric == "clip_similarity_target_image_edit_part":
            if tgt_mask.sum() == 0:
                return "nan"
            return self.clip(tgt_image, tgt_prompt, tgt_mask)
        raise SystemExit(f"unknown metric {metric!r}; PnPInversion's: psnr, lpips, mse, ssim, structure_distance "
                         "(each also _unedit_part / _edit_part), clip_similarity_source_image, "
                         "clip_similarity_target_image, clip_similarity_target_image_edit_part")


def finite(values) -> list[float]:
    """The numbers among a column's values: "nan" (a part without pixels), skipped and failed cells left out; an
    infinite PSNR (an unchanged background) kept, so that the mean says so."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return out
