"""PIE-Bench's metrics and data format as PnPInversion computes and reads them (``workshop/piebench``, issue 84):
exact values on hand-made images and masks; parity with torchmetrics (which their calculator wraps) and with
their own ``evaluation/evaluate.py`` / ``matrics_calculator.py`` (cure-lab/PnPInversion, fetched, run unchanged)
where those are at hand, skipped loudly where not."""
from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from workshop.piebench import format as F
from workshop.piebench import metrics as M


def _img(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(a, dtype=np.uint8))


def _random_pair(seed: int, size: int = 64):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (size, size, 3))
    b = np.clip(a + rng.integers(-40, 41, (size, size, 3)), 0, 255)
    return _img(a), _img(b)


# ----------------------------------------------------------------------------- the mask format

def test_mask_decode_sets_the_runs_and_the_border_as_pnpinversion():
    """Runs ``[start, length]`` over the row-major flattened image; a run past the end is cut; the outermost rows and
    columns are 1 whatever the runs (their "annotation errors in boundary")."""
    m = F.mask_decode([10, 3, 60, 100], (8, 8))
    flat = m.reshape(-1)
    assert m.dtype == np.float64 and m.shape == (8, 8)
    assert flat[10:13].tolist() == [1, 1, 1] and flat[60:].tolist() == [1, 1, 1, 1]
    assert m[1:-1, 1:-1].sum() == 3   # 10-12: row 1, columns 2-4; 60-63 lie in the last row (the border)
    expect = np.zeros(64)
    expect[10:13] = 1
    expect[60:] = 1
    expect = expect.reshape(8, 8)
    expect[0, :] = expect[-1, :] = expect[:, 0] = expect[:, -1] = 1
    assert (m == expect).all()
    assert F.mask_decode([]).shape == (512, 512)   # their default shape, which evaluate.py uses


def test_mask_encode_round_trips_and_runs_leave_the_border_out():
    rng = np.random.default_rng(0)
    mask = rng.random((32, 48)) > 0.6
    rle = F.mask_encode(mask)
    assert all(isinstance(v, int) for v in rle) and len(rle) % 2 == 0
    assert (F.mask_runs(rle, mask.shape) == mask).all()
    decoded = F.mask_decode(rle, mask.shape)
    assert (decoded[1:-1, 1:-1] == mask[1:-1, 1:-1]).all() and decoded[0].all() and decoded[:, -1].all()


def test_prompts_lose_their_brackets_and_categories_parse():
    assert F.plain("a [rusty] bicycle [on] the road") == "a rusty bicycle on the road"
    assert F.parse_categories("0-2,6") == ["0", "1", "2", "6"] and F.parse_categories("") is None
    with pytest.raises(SystemExit, match="editing type"):
        F.parse_categories("12")


def test_toy_set_brackets_mark_the_words_that_differ():
    from workshop.piebench.toyset import bracketed
    assert bracketed("a red circle on a blue background", "a green circle on a blue background") == (
        "a [red] circle on a blue background", "a [green] circle on a blue background")
    assert bracketed("a red circle and a blue square on a green background", "a blue square on a green background") == (
        "[a red circle and] a blue square on a green background", "a blue square on a green background")


# ----------------------------------------------------------------------------- exact values

def test_psnr_and_mse_exact_on_constant_images_and_masks():
    """0.2 apart everywhere (51 and 102 of 255): MSE 0.04, PSNR 13.98 dB; the mask zeroes pixels in both images, which then count as equal
    pixels (their calculator's masking): half the image masked out halves the MSE (+3.01 dB)."""
    a, b = _img(np.full((16, 16, 3), 51)), _img(np.full((16, 16, 3), 51 + 51))   # 0.2 and 0.4: 0.2 apart
    assert M.mse(a, b) == pytest.approx(0.04, rel=1e-6)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.04), rel=1e-6)
    half = np.zeros((16, 16, 3))
    half[:8] = 1
    assert M.mse(a, b, half, half) == pytest.approx(0.02, rel=1e-6)
    assert M.psnr(a, b, half, half) == pytest.approx(10 * math.log10(1 / 0.02), rel=1e-6)


def test_ssim_exact_on_constant_images():
    """Constant images x and y: every window has no variance, so SSIM is the luminance term
    (2xy + C1) / (x^2 + y^2 + C1) at every pixel, C1 = (0.01 * 1)^2, up to float32's rounding of the variances
    (E[x^2] - E[x]^2, as torchmetrics computes them); identical images give 1."""
    x, y = 51 / 255, 153 / 255
    a, b = _img(np.full((20, 20, 3), 51)), _img(np.full((20, 20, 3), 153))
    c1 = 0.01 ** 2
    assert M.ssim(a, b) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1), rel=3e-4)
    p, _ = _random_pair(1)
    assert M.ssim(p, p) == pytest.approx(1.0, abs=1e-6)


def test_nan_rules_and_skipped_metrics():
    """``calculate_metric``'s rules: a part without pixels is "nan"; a metric whose weights are absent raises
    Skipped with the reason."""
    calc = M.Calculator()
    a, b = _random_pair(2, 16)
    full = np.ones((16, 16, 3))
    assert calc.calculate("psnr_unedit_part", a, b, full, full, "", "") == "nan"
    assert calc.calculate("ssim_edit_part", a, b, 0 * full, 0 * full, "", "") == "nan"
    assert calc.calculate("mse", a, b, full, full, "", "") == pytest.approx(M.mse(a, b))
    for metric in ("structure_distance", "lpips_unedit_part", "clip_similarity_target_image"):
        with pytest.raises(M.Skipped, match="weights"):
            calc.calculate(metric, a, b, full, full, "x", "y")


def test_ssim_as_of_2023_leaves_the_padded_border_out():
    """torchmetrics up to 1.4 (PnPInversion's, October 2023: 1.2) averaged the SSIM map without its 5-px border
    (the Gaussian window's reach into the reflect padding) and did not clamp the variances; 1.5+ average it all."""
    a, b = _random_pair(8, 40)
    p, g = M._pair(a, b, None, None)
    full = M.ssim_map(p, g, clamp=False)
    assert M.ssim(a, b, as_of="2023") == pytest.approx(float(full[..., 5:-5, 5:-5].mean()), rel=1e-6)
    assert M.ssim(a, b, as_of="current") == pytest.approx(float(M.ssim_map(p, g).mean()), rel=1e-6)
    # a background masked out along the image's edge (PIE-Bench's border rows count as edited): the versions differ
    edge = np.ones((40, 40, 3))
    edge[:, :8] = 0
    assert abs(M.ssim(a, b, edge, edge, as_of="2023") - M.ssim(a, b, edge, edge, as_of="current")) > 1e-3


def torchmetrics_as_of() -> str:
    import torchmetrics
    major, minor = (int(x) for x in torchmetrics.__version__.split(".")[:2])
    return "2023" if (major, minor) <= (1, 4) else "current"


# ----------------------------------------------------------------------------- parity with torchmetrics

@pytest.fixture(scope="module")
def torchmetrics_or_skip():
    try:
        import torchmetrics
    except ImportError:
        return None
    return torchmetrics


def test_weight_free_metrics_match_torchmetrics(torchmetrics_or_skip, skip_loudly):
    """The torchmetrics classes their calculator builds, on the same masked tensors."""
    if torchmetrics_or_skip is None:
        skip_loudly("PIE-BENCH TORCHMETRICS PARITY SKIPPED: torchmetrics is not installed (pip install torchmetrics; "
                    "it needs no torchvision for these metrics)")
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
    from torchmetrics.regression import MeanSquaredError
    for seed in range(3):
        a, b = _random_pair(seed, 48)
        mask = np.zeros((48, 48, 3))
        mask[10:30, 5:40] = 1
        for m in (None, 1 - mask):
            p, g = M._pair(a, b, m, m)
            assert M.psnr(a, b, m, m) == pytest.approx(float(PeakSignalNoiseRatio(data_range=1.0)(p, g)), abs=1e-5)
            assert M.mse(a, b, m, m) == pytest.approx(float(MeanSquaredError()(p[0].contiguous(), g[0].contiguous())),
                                                      rel=1e-6)
            assert M.ssim(a, b, m, m, as_of="current") == pytest.approx(
                float(StructuralSimilarityIndexMeasure(data_range=1.0)(p, g)), abs=1e-6)


def test_lpips_matches_torchmetrics_lpips_on_the_same_squeezenet(torchmetrics_or_skip, skip_loudly, monkeypatch):
    """torchmetrics' LPIPS (net 'squeeze', its shipped v0.1 heads) with its torchvision SqueezeNet replaced by ours
    (random weights: torchvision cannot be installed here): the same distance. Our SqueezeNet's layout is
    torchvision's (its state dict's keys and shapes load)."""
    if torchmetrics_or_skip is None:
        skip_loudly("PIE-BENCH LPIPS PARITY SKIPPED: torchmetrics is not installed")
    from torchmetrics.functional.image import lpips as TL

    from workshop.piebench import lpips as L
    torch.manual_seed(0)
    features = L.squeezenet1_1_features()
    for mod in features.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.1)
            torch.nn.init.normal_(mod.bias, std=0.1)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    path = L.shipped_heads()
    assert path is not None
    ours = L.SqueezeLpips(None, eps_inside=not hasattr(TL, "normalize_tensor"))   # 1.2 had the lpips package's
    ours_state = {k[len("features."):]: v for k, v in state.items()}
    full = L.squeezenet1_1_features()
    full.load_state_dict(ours_state)
    ours.slices = torch.nn.ModuleList(torch.nn.Sequential(*[full[i] for i in r]) for r in L.SLICES)
    heads = torch.load(path, map_location="cpu", weights_only=True)
    for k, conv in enumerate(ours.lins):
        conv.weight.data.copy_(heads[f"lin{k}.model.1.weight"])
    monkeypatch.setattr(TL, "_get_tv_model_features", lambda net, pretrained: full)
    theirs = TL._NoTrainLpips(net="squeeze")
    a, b = _random_pair(3, 64)
    p, g = M._pair(a, b, None, None)
    want = float(theirs(p * 2 - 1, g * 2 - 1).squeeze())
    assert float(ours.distance(p * 2 - 1, g * 2 - 1)[0]) == pytest.approx(want, rel=1e-5)
    assert want > 0


# ----------------------------------------------------------------------------- parity with PnPInversion's code

@pytest.fixture(scope="module")
def pnp(tmp_path_factory, reference_copy, torchmetrics_or_skip):
    """PnPInversion's ``evaluation`` package, imported unchanged. Adapters: torchmetrics imported first, then a
    stand-in ``torchvision`` (``Resize``, ``transforms``: used only by the DINO loss, which is not built) so that
    ``matrics_calculator`` imports; ``MetricsCalculator`` built without its ``__init__`` (which downloads CLIP,
    LPIPS's and DINO's weights) and given the three weight-free torchmetrics objects its ``__init__`` makes."""
    if torchmetrics_or_skip is None:
        return None
    root = reference_copy(tmp_path_factory.mktemp("pnp"), "PNPINVERSION", "cure-lab/PnPInversion",
                          ("evaluation/evaluate.py", "evaluation/matrics_calculator.py"), "evaluation/evaluate.py")
    if root is None:
        return None
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
    from torchmetrics.regression import MeanSquaredError
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.transforms")}
    tv, tr = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    for name in ("Resize", "Normalize", "Compose"):
        setattr(tr, name, None)
    tv.transforms = tr
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tr})
    sys.path.insert(0, str(root))
    try:
        import evaluation.evaluate as E
    finally:
        sys.path.remove(str(root))
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    calc = E.MetricsCalculator.__new__(E.MetricsCalculator)
    calc.device = "cpu"
    calc.psnr_metric_calculator = PeakSignalNoiseRatio(data_range=1.0)
    calc.mse_metric_calculator = MeanSquaredError()
    calc.ssim_metric_calculator = StructuralSimilarityIndexMeasure(data_range=1.0)
    return E, calc


def test_mask_decode_and_metrics_match_pnpinversion(pnp, skip_loudly):
    """Their ``mask_decode`` on PIE-Bench-shaped RLE, and their ``calculate_metric`` (PSNR, MSE, SSIM, each whole,
    unedited part and edited part) against ours, with the mask as ``evaluate.py`` makes it."""
    if pnp is None:
        skip_loudly("PIE-BENCH PNPINVERSION PARITY SKIPPED: cure-lab/PnPInversion's evaluation code or torchmetrics "
                    "is absent (set PNPINVERSION_PATH to a checkout, or fetch it; pip install torchmetrics)")
    E, theirs = pnp
    rng = np.random.default_rng(4)
    region = np.zeros((512, 512), dtype=bool)
    region[100:300, 150:420] = True
    region[400:, :60] = rng.random((112, 60)) > 0.5
    rle = F.mask_encode(region)
    assert (E.mask_decode(rle) == F.mask_decode(rle)).all()
    assert (E.mask_decode([0, 10 ** 7]) == F.mask_decode([0, 10 ** 7])).all()   # a run past the end
    small = np.zeros((128, 128), dtype=bool)   # the metrics at 128 px (the same code at any size): quicker
    small[20:70, 40:110] = True
    small[100:, :20] = rng.random((28, 20)) > 0.5
    rle = F.mask_encode(small)
    assert (E.mask_decode(rle, [128, 128]) == F.mask_decode(rle, (128, 128))).all()
    mask = F.mask_decode(rle, (128, 128))[:, :, np.newaxis].repeat([3], axis=2)
    a = rng.integers(0, 256, (128, 128, 3))
    src, tgt = _img(a), _img(np.clip(a + rng.integers(-30, 31, a.shape), 0, 255))
    ours = M.Calculator(as_of=torchmetrics_as_of())   # the installed torchmetrics their code runs on here
    for metric in ("psnr", "mse", "ssim"):
        for part in ("", "_unedit_part", "_edit_part"):
            want = E.calculate_metric(theirs, metric + part, src, tgt, mask, mask, "a", "b")
            got = ours.calculate(metric + part, src, tgt, mask, mask, "a", "b")
            assert got == pytest.approx(want, rel=1e-5), metric + part


# ----------------------------------------------------------------------------- the weighted metrics' plumbing

def _tiny_clip(folder):
    """A random CLIP (1 layer each side) with a character-level CLIP tokenizer, saved as a local model folder."""
    import json

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    torch.manual_seed(0)
    end = vocab["<|endoftext|>"]
    cfg = CLIPConfig(text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                      vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"], eos_token_id=end,
                                      pad_token_id=end),
                     vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=64, image_size=224, patch_size=32), projection_dim=16)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tok).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return _tiny_clip(tmp_path_factory.mktemp("clip") / "openai-tiny-clip")


def test_clip_similarity_matches_pnpinversions_calculator(pnp, skip_loudly, tiny_clip):
    """Their ``calculate_clip_similarity`` (whole and masked) with torchmetrics' CLIPScore on a tiny random CLIP,
    against ours on the same folder. Adapter: torchmetrics 1.9 expects tensors from ``get_*_features``, which
    transformers 5 wraps in an output object; a wrapper hands it the tensor (``pooler_output``)."""
    if pnp is None:
        skip_loudly("PIE-BENCH CLIP PARITY SKIPPED: cure-lab/PnPInversion's evaluation code or torchmetrics is absent")
    from torchmetrics.multimodal import CLIPScore
    from transformers import CLIPModel, CLIPProcessor
    E, theirs = pnp
    folder = tiny_clip

    class Tensors(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.m, self.config = model, model.config

        def get_image_features(self, *a, **k):
            return self.m.get_image_features(*a, **k).pooler_output

        def get_text_features(self, *a, **k):
            return self.m.get_text_features(*a, **k).pooler_output

    theirs.clip_metric_calculator = CLIPScore(model_name_or_path=lambda: (
        Tensors(CLIPModel.from_pretrained(str(folder))), CLIPProcessor.from_pretrained(str(folder))))
    ours = M.Calculator(clip=folder)   # CLIPScore is the same in every torchmetrics
    a, b = _random_pair(5, 96)
    mask = np.zeros((96, 96, 3))
    mask[20:70, 30:90] = 1
    for metric in ("clip_similarity_source_image", "clip_similarity_target_image",
                   "clip_similarity_target_image_edit_part"):
        want = E.calculate_metric(theirs, metric, a, b, mask, mask, "a red circle", "a blue circle")
        got = ours.calculate(metric, a, b, mask, mask, "a red circle", "a blue circle")
        assert got == pytest.approx(want, abs=1e-4), metric


class _DinoAttention(torch.nn.Module):
    """DINO's ``vision_transformer.Attention`` (facebookresearch/dino), as written there."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = torch.nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = torch.nn.Dropout(0.0)
        self.proj = torch.nn.Linear(dim, dim)
        self.proj_drop = torch.nn.Dropout(0.0)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x)), attn


class _DinoBlock(torch.nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim, eps=1e-6), torch.nn.LayerNorm(dim, eps=1e-6)
        self.attn = _DinoAttention(dim, heads)
        self.fc1, self.fc2 = torch.nn.Linear(dim, hidden), torch.nn.Linear(hidden, dim)

    def forward(self, x):
        y, _ = self.attn(self.norm1(x))
        x = x + y
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class _DinoViT(torch.nn.Module):
    """DINO's ViT (patch embedding, class token, position embedding, pre-norm blocks) holding the weights of a
    transformers ViTModel (q, k, v stacked into DINO's ``qkv``)."""

    def __init__(self, hf):
        super().__init__()
        cfg, sd = hf.config, hf.state_dict()
        d, heads = cfg.hidden_size, cfg.num_attention_heads
        self.patch = torch.nn.Conv2d(3, d, cfg.patch_size, cfg.patch_size)
        self.patch.weight.data.copy_(sd["embeddings.patch_embeddings.projection.weight"])
        self.patch.bias.data.copy_(sd["embeddings.patch_embeddings.projection.bias"])
        self.cls_token = torch.nn.Parameter(sd["embeddings.cls_token"].clone())
        self.pos_embed = torch.nn.Parameter(sd["embeddings.position_embeddings"].clone())
        self.blocks = torch.nn.ModuleList()
        for i in range(cfg.num_hidden_layers):
            b, p = _DinoBlock(d, heads, cfg.intermediate_size), f"layers.{i}."
            b.attn.qkv.weight.data.copy_(torch.cat([sd[p + f"attention.{n}_proj.weight"] for n in "qkv"]))
            b.attn.qkv.bias.data.copy_(torch.cat([sd[p + f"attention.{n}_proj.bias"] for n in "qkv"]))
            for mine, theirs in (("attn.proj", "attention.o_proj"), ("norm1", "layernorm_before"),
                                 ("norm2", "layernorm_after"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")):
                mod = b.get_submodule(mine)
                mod.weight.data.copy_(sd[p + theirs + ".weight"])
                mod.bias.data.copy_(sd[p + theirs + ".bias"])
            self.blocks.append(b)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return x


def test_structure_distance_keys_match_pnpinversions_extractor(pnp, skip_loudly, tmp_path, monkeypatch):
    """Their ``VitExtractor.get_keys_self_sim_from_input`` (layer 11 of 'dino_vitb8': 12 heads of 768, patch 8: their
    code fixes these) with ``torch.hub.load`` handing it a DINO-architecture ViT holding a random transformers
    ViTModel's weights, against ours (that ViTModel saved and loaded from a folder) on the same transformed input;
    then the metric: the MSE of the two images' matrices."""
    if pnp is None:
        skip_loudly("PIE-BENCH DINO PARITY SKIPPED: cure-lab/PnPInversion's evaluation code or torchmetrics is absent")
    from transformers import ViTConfig, ViTModel
    E, _ = pnp
    torch.manual_seed(0)
    hf = ViTModel(ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=32,
                            image_size=64, patch_size=8, layer_norm_eps=1e-6), add_pooling_layer=False).eval()
    hf.save_pretrained(tmp_path / "dino")
    dino = _DinoViT(hf).eval()
    monkeypatch.setattr(torch.hub, "load", lambda repo, name: dino)
    extractor = sys.modules["evaluation.matrics_calculator"].VitExtractor("dino_vitb8", "cpu")
    ours = M.DinoStructure(tmp_path / "dino")
    # the metric at 64 px (their 224 is only the resize, checked in test_dino_input_is_their_transform): quick
    monkeypatch.setattr(ours, "_transform", lambda t: torch.nn.functional.interpolate(t / 255, size=(64, 64)))
    a, b = _random_pair(6, 32)
    pa, pb = (torch.nn.functional.interpolate(torch.tensor(np.array(i), dtype=torch.float32).permute(2, 0, 1)[None]
                                              / 255, size=(64, 64)) for i in (a, b))
    with torch.no_grad():
        sims = [extractor.get_keys_self_sim_from_input(t, layer_num=11)[0] for t in (pa, pb)]
    got = ours.keys_self_sim(pa)
    assert got.shape == sims[0].shape == (65, 65)
    assert torch.allclose(got, sims[0], atol=1e-5)
    assert ours(a, b) == pytest.approx(float(torch.nn.functional.mse_loss(sims[0], sims[1])), rel=1e-4)


def test_dino_input_is_their_transform():
    """Resize(224, max_size=480) then ImageNet's normalisation, on the 0..255 image their code passes."""
    x = torch.full((1, 3, 512, 512), 255.0)
    t = M.DinoStructure._transform(M.DinoStructure.__new__(M.DinoStructure), x)
    assert t.shape == (1, 3, 224, 224)
    assert torch.allclose(t[0, :, 0, 0], (255 - torch.tensor(M.DinoStructure.MEAN)) / torch.tensor(M.DinoStructure.STD))
    wide = M.DinoStructure._transform(M.DinoStructure.__new__(M.DinoStructure), torch.zeros(1, 3, 100, 1000))
    assert wide.shape[-2:] == (48, 480)   # the long side capped at 480, the short one scaled with it
    # torchvision before 0.17 (as of 2023) resized tensors without antialiasing: a 2x2 checker at 512 -> 224 keeps
    # its full contrast; antialiased (0.17+, "current") it blurs to grey
    checker = (torch.arange(512)[:, None] // 2 + torch.arange(512)[None] // 2) % 2 * 255.0
    x = checker.expand(1, 3, 512, 512)
    plain, smooth = M.DinoStructure.__new__(M.DinoStructure), M.DinoStructure.__new__(M.DinoStructure)
    plain.antialias, smooth.antialias = False, True
    assert float(plain._transform(x).std()) > 3 * float(smooth._transform(x).std())


def test_the_tool_scores_kept_edits_with_the_weights_given(tmp_path, monkeypatch, tiny_clip):
    """``--skip-existing`` with every edit already in OUT: no workflow runs (no host), the weighted metrics are
    computed where their weights are given (a tiny random CLIP; a random SqueezeNet in torchvision's layout with the
    shipped LPIPS heads) and skipped, saying why, where not (no DINO); an unchanged image's background PSNR is inf
    and its MSE 0, as their calculator gives."""
    from workshop.piebench import lpips as L
    from workshop.piebench import run as R
    from workshop.piebench import table as T
    from workshop.piebench.__main__ import main
    from workshop.piebench.toyset import build
    data, out = tmp_path / "data", tmp_path / "out"
    build(data, cases=1)
    items = F.load_items(data)
    for item in items:
        with Image.open(data / F.IMAGES / item.image_path) as im:
            src = np.asarray(im.convert("RGB"))
        for spec, img in (("copy", src), ("noisy", np.clip(src.astype(int) + 20, 0, 255))):
            path = R.output_path(out, spec, item)
            path.parent.mkdir(parents=True, exist_ok=True)
            _img(img).save(path)
    torch.manual_seed(0)
    squeeze = tmp_path / "squeezenet1_1.pth"
    torch.save({f"features.{k}": v for k, v in L.squeezenet1_1_features().state_dict().items()}, squeeze)
    argv = ["--data", str(data), "--workflows", "copy,noisy", "--out", str(out), "--skip-existing",
            "--clip", str(tiny_clip)]
    heads = L.shipped_heads()
    if heads is not None:
        argv += ["--lpips-squeezenet", str(squeeze)]
    monkeypatch.setattr("workshop.piebench.__main__.boot_host", lambda args: pytest.fail("no run was needed"))
    assert main(argv) == 0
    header, rows = T.read_items(out / T.RESULT_CSV)
    col = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    assert col["copy|psnr_unedit_part"] == ["inf"] and col["copy|mse_unedit_part"] == ["0.0"]
    assert all(float(v) > 0 for v in col["noisy|mse_unedit_part"])
    assert all(0 <= float(v) for v in col["noisy|clip_similarity_target_image_edit_part"])
    assert col["copy|clip_similarity_source_image"] == col["noisy|clip_similarity_source_image"]
    if heads is not None:
        assert col["copy|lpips_unedit_part"] == ["0.0"] and all(float(v) > 0 for v in col["noisy|lpips_unedit_part"])
    assert all(v == "skipped: no DINO ViT-B/8 weights (--dino)" for v in col["noisy|structure_distance"])
    summary = (out / T.SUMMARY_MD).read_text()
    assert "| copy | 1 | skipped: no DINO ViT-B/8 weights (--dino) | inf |" in summary


def test_item_input_carries_the_mask_as_load_image_reads_it(tmp_path):
    """The item's image goes to Load Image as RGBA, transparent exactly on the annotated runs (Load Image's MASK is
    1 - alpha: the edit region), its colours unchanged; ``NAME#K`` picks the K-th picture."""
    from workshop.piebench import run as R
    rgb = np.random.default_rng(7).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    region = np.zeros((24, 32), dtype=bool)
    region[5:12, 8:20] = True
    _img(rgb).save(tmp_path / "src.png")
    item = F.Item("k", "src.png", "a", "b", "", "1", "cat dog", F.mask_encode(region))
    with Image.open(R.masked_input(tmp_path / "src.png", item, tmp_path / "in")) as im:
        got = np.asarray(im)
    assert got.shape == (24, 32, 4) and (got[..., :3] == rgb).all()
    assert ((got[..., 3] == 0) == region).all() and set(np.unique(got[..., 3])) == {0, 255}
    assert R.parse_workflow("Flux - Flow inversion and edit#0") == ("Flux - Flow inversion and edit", 0)
    assert R.parse_workflow("Flux - FlowEdit") == ("Flux - FlowEdit", None)
    assert item.blend_words == ("cat", "dog")


def test_item_texts_go_where_each_template_takes_them():
    """Prompts into the nodes titled Source / Target prompt (by the node's kind: a primitive's value, a text
    encoder's text), the instruction into one titled Instruction (Qwen-Image-Edit's encoder: its prompt); a
    template with only a target prompt (RF-Inversion) takes it alone; one with neither is refused."""
    from workshop.headless.runner import WorkflowError
    from workshop.piebench import run as R
    item = F.Item("k", "x.png", "a cat", "a dog", "Turn the cat into a dog", "1", "cat dog", [])
    ov = R.item_overrides(item, [{"title": "Source prompt", "type": "PrimitiveStringMultiline"},
                                 {"title": "Target prompt", "type": "CLIPTextEncode"}])
    assert ov["Source prompt"] == {"value": "a cat"} and ov["Target prompt"] == {"text": "a dog"}
    assert ov["InvertEditJointAttentionInject"]["blend_target_words"] == "dog"
    ov = R.item_overrides(item, [{"title": "Target prompt", "type": "PrimitiveStringMultiline"}])
    assert "Source prompt" not in ov and ov["Target prompt"] == {"value": "a dog"}
    ov = R.item_overrides(item, [{"title": "Instruction", "type": "TextEncodeQwenImageEdit"}])
    assert ov["Instruction"] == {"prompt": "Turn the cat into a dog"}
    with pytest.raises(WorkflowError, match="no node titled 'Target prompt' or 'Instruction'"):
        R.item_overrides(item, [{"title": "Source prompt", "type": "PrimitiveStringMultiline"}])


def test_summary_counts_failed_runs():
    from workshop.piebench import table as T
    header = ["file_id", "w|psnr_unedit_part", "w|mse_unedit_part"]
    rows = [["1", "20.0", "0.01"], ["2", "failed: boom", "failed: boom"]]
    heads, lines = T.summary(header, rows)
    assert lines[0][:4] == ["w", "1 (1 failed: see evaluation_result.csv)", "n/a", "20.00"]
