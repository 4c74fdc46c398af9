"""The tiny random-weight flow models (invertedit/demo/tiny_flow_models.py: Flux.1 dev, Flux.1 schnell,
SD3, Qwen-Image) on the host: deterministic weights, what the pack reads of them, the stock nodes end to
end, and weight parity with diffusers' FluxTransformer2DModel / SD3Transformer2DModel /
QwenImageTransformer2DModel (tests/reference/flow_diffusers.py), with where the host's Qwen-Image rope
positions part from diffusers' (odd patch grids)."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

FAMILIES = ("flux-dev", "flux-schnell", "sd3", "qwen-image")
CONTEXT_DIM = {"flux-dev": 64, "flux-schnell": 64, "sd3": 4096, "qwen-image": 64}
POOLED_DIM = {"flux-dev": 32, "flux-schnell": 32, "sd3": 96}
TEXT_TOKENS = {"flux-dev": 256, "flux-schnell": 256, "sd3": 77}


@pytest.fixture(scope="module")
def tfm(host):
    return importlib.import_module(host.pack.__name__ + ".demo.tiny_flow_models")


@pytest.fixture(scope="module")
def flow(tfm):
    """``flow(family, seed=0)`` -> (MODEL, CLIP, VAE), cached for this module."""
    cache: dict = {}

    def get(family: str, seed: int = 0):
        if (family, seed) not in cache:
            cache[family, seed] = tfm.build_tiny_flow_models(family, seed=seed)
        return cache[family, seed]

    return get


@pytest.fixture(scope="module")
def fd(host):
    """tests/reference/flow_diffusers.py, imported by path (it imports comfy: after the host is booted)."""
    pytest.importorskip("diffusers")
    name = "invertedit_tests_flow_diffusers"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "reference" / "flow_diffusers.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _state_dicts(models):
    model, clip, vae = models
    return (model.model.diffusion_model.state_dict(), clip.cond_stage_model.state_dict(),
            vae.first_stage_model.state_dict())


def _latent(family: str, batch: int, h: int, w: int, seed: int) -> torch.Tensor:
    """A standard normal latent in the family's shape: Qwen-Image's has the Wan VAE's frame axis."""
    shape = (batch, 16, 1, h, w) if family == "qwen-image" else (batch, 16, h, w)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _text(cond):
    """(context, pooled vector) of a CONDITIONING (Qwen-Image has no pooled vector: None)."""
    return cond[0][0], cond[0][1].get("pooled_output")


def _image(seed: int = 0, size: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(1, 3, 8, 8, generator=g)  # a smooth picture rather than white noise
    img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
    return img.permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights(tfm, flow, family):
    a = flow(family)
    b = tfm.build_tiny_flow_models(family, seed=0)
    c = flow(family, seed=1)
    for part_a, part_b, part_c in zip(_state_dicts(a), _state_dicts(b), _state_dicts(c)):
        assert part_a.keys() == part_b.keys()
        for k in part_a:
            assert torch.equal(part_a[k], part_b[k]), k
        assert any(not torch.equal(part_a[k], part_c[k]) for k in part_a if part_a[k].is_floating_point())
    for part in _state_dicts(a):
        assert all(torch.isfinite(v).all() for v in part.values() if v.is_floating_point())


@pytest.mark.parametrize("family", FAMILIES)
def test_host_classes_and_family(host, flow, family):
    import comfy.model_base
    import comfy.model_sampling

    model, clip, vae = flow(family)
    base = model.model
    fam = host.pack.hostkit.family.model_family(model)
    assert fam.parameterisation == "flow"
    assert fam.layout == ("dit-double-single" if family.startswith("flux") else "dit-joint")
    assert fam.context_dim == CONTEXT_DIM[family]
    assert fam.pooled_dim == POOLED_DIM.get(family)
    assert fam.editable is False  # the pack's SD techniques do not edit flow models
    expected = {"flux-dev": (comfy.model_base.Flux, comfy.model_base.ModelType.FLUX, "Flux"),
                "flux-schnell": (comfy.model_base.Flux, comfy.model_base.ModelType.FLOW, "FluxSchnell"),
                "sd3": (comfy.model_base.SD3, comfy.model_base.ModelType.FLOW, "SD3"),
                "qwen-image": (comfy.model_base.QwenImage, comfy.model_base.ModelType.FLUX, "QwenImage")}[family]
    assert type(base) is expected[0] and base.model_type == expected[1] and fam.config_name == expected[2]
    ms = base.model_sampling
    if family in ("flux-dev", "qwen-image"):   # the host samples Qwen-Image as Flux dev: shift 1.15, timestep = sigma
        assert isinstance(ms, comfy.model_sampling.ModelSamplingFlux) and ms.shift == 1.15
        assert float(ms.timestep(torch.tensor(0.37))) == pytest.approx(0.37)
    if family == "flux-dev":
        assert base.diffusion_model.params.guidance_embed
    elif family == "flux-schnell":
        assert isinstance(ms, comfy.model_sampling.ModelSamplingDiscreteFlow) and (ms.shift, ms.multiplier) == (1.0, 1.0)
        assert not base.diffusion_model.params.guidance_embed
    elif family == "sd3":
        assert isinstance(ms, comfy.model_sampling.ModelSamplingDiscreteFlow) and (ms.shift, ms.multiplier) == (3.0, 1000)
    assert base.latent_format.latent_channels == 16 and vae.latent_channels == 16
    assert base.latent_format.latent_dimensions == (3 if family == "qwen-image" else 2)
    assert all(p.dtype == torch.float32 for p in base.parameters())
    assert all(p.dtype == torch.float32 for p in clip.cond_stage_model.parameters())


@pytest.mark.parametrize("family", FAMILIES[:3])
def test_real_tokenizers_and_text_shapes(flow, family):
    _, clip, _ = flow(family)
    tok = clip.tokenizer
    assert len(tok.clip_l.tokenizer) == 49408  # the real CLIP vocabulary
    assert len(tok.t5xxl.tokenizer) == 32100  # the real T5 tokenizer (the model's table has 32128 rows)
    if family != "sd3":
        assert clip.cond_stage_model.t5xxl.transformer.shared.weight.shape == (32128, 64)
    else:
        assert clip.cond_stage_model.t5xxl is None  # see tiny_flow_models: no T5 for SD3
    cond = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a cat"))
    ctx, extra = cond[0]
    assert ctx.shape == (1, TEXT_TOKENS[family], CONTEXT_DIM[family])
    assert extra["pooled_output"].shape == (1, POOLED_DIM[family])
    assert torch.isfinite(ctx).all() and ctx.std() > 0.1
    other = clip.encode_from_tokens_scheduled(clip.tokenize("a painting of a dog"))[0][0]
    assert rel_err(other, ctx) > 0.05


def test_qwen_image_real_tokenizer_and_unpadded_text(flow):
    """Qwen2.5-VL's real tokenizer; the prompt's own tokens (the host strips the chat template and pads
    nothing: prompts of different lengths give contexts of different lengths), no pooled vector."""
    _, clip, _ = flow("qwen-image")
    assert len(clip.tokenizer.qwen25_7b.tokenizer) == 151669   # the real Qwen2 vocabulary with its special tokens
    assert clip.cond_stage_model.qwen25_7b.transformer.model.embed_tokens.weight.shape == (152064, 64)
    cat = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a cat"))
    ctx, extra = cat[0]
    assert ctx.shape == (1, 10, 64) and extra.get("pooled_output") is None
    assert torch.isfinite(ctx).all() and ctx.std() > 0.1
    dog = clip.encode_from_tokens_scheduled(clip.tokenize("a painting of a dog"))[0][0]
    assert dog.shape == ctx.shape and rel_err(dog, ctx) > 0.05
    longer = clip.encode_from_tokens_scheduled(clip.tokenize("a red circle on a green field"))[0][0]
    assert longer.shape == (1, 12, 64)


def _sample(host, family, model, clip, latent, steps=4, denoise=1.0):
    pos, neg = encode(host, clip, "a photo of a cat"), encode(host, clip, "")
    if family == "flux-dev":
        pos = call(host, "FluxGuidance", conditioning=pos, guidance=3.5)[0]
    cfg = 3.0 if family in ("sd3", "qwen-image") else 1.0
    return call(host, "KSampler", model=model, seed=7, steps=steps, cfg=cfg, sampler_name="euler", scheduler="simple",
                positive=pos, negative=neg, latent_image=latent, denoise=denoise)[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_stock_nodes_end_to_end(host, flow, family):
    model, clip, vae = flow(family)
    shape = (1, 16, 1, 16, 16) if family == "qwen-image" else (1, 16, 16, 16)   # the host adds Qwen-Image's frame axis
    latent = call(host, "EmptySD3LatentImage", width=128, height=128, batch_size=1)[0]
    out = _sample(host, family, model, clip, latent)["samples"]
    assert out.shape == shape and torch.isfinite(out).all() and out.std() > 0.1
    image = call(host, "VAEDecode", vae=vae, samples={"samples": out})[0]
    assert image.shape == (1, 128, 128, 3) and torch.isfinite(image).all()
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01

    # img2img: VAEEncode of a small picture, partial denoise
    encoded = call(host, "VAEEncode", pixels=_image(), vae=vae)[0]
    z = encoded["samples"]
    assert z.shape == shape and torch.isfinite(z).all()
    # about the spread the family's latent format undoes, so the model sees latents of about unit spread
    assert 0.5 < base_std(model, z) < 2.0
    edited = _sample(host, family, model, clip, encoded, denoise=0.5)["samples"]
    assert torch.isfinite(edited).all() and 0.0 < rel_err(edited, z) < 2.0


def base_std(model, z):
    return float(model.model.process_latent_in(z).std())


def test_qwen_image_vae_latent_spread(host, tfm):
    """The tiny Wan VAE's latents have about the spread the host's Wan21 format undoes (a mean and spread per
    channel), over weight seeds and pictures: the model sees latents of about unit spread (what
    ``_WAN_RAW_STD`` was measured for)."""
    spreads = []
    for seed in range(3):
        vae = tfm.build_tiny_flow_vae("qwen-image", seed=seed)
        model = tfm.build_tiny_flow_unet("qwen-image", seed=seed)
        for picture in range(3):
            z = call(host, "VAEEncode", pixels=_image(picture), vae=vae)[0]["samples"]
            assert z.shape == (1, 16, 1, 16, 16)
            spreads.append(base_std(model, z))
    spreads = torch.tensor(spreads)
    print(f"qwen-image VAE: model-space latent spread {spreads.mean():.2f} ({spreads.min():.2f} - {spreads.max():.2f})")
    assert 0.85 < spreads.mean() < 1.15
    assert 0.6 < spreads.min() and spreads.max() < 1.6


def test_flux_dev_guidance_changes_the_prediction(host, flow, fd):
    model, clip, _ = flow("flux-dev")
    cond = encode(host, clip, "a photo of a cat")
    ctx, pooled = cond[0][0], cond[0][1]["pooled_output"]
    x = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    s = torch.tensor([0.6])
    v1 = fd.host_velocity(model, x, s, ctx, pooled, torch.tensor([3.5]))
    v2 = fd.host_velocity(model, x, s, ctx, pooled, torch.tensor([1.5]))
    v3 = fd.host_velocity(model, x, s, ctx, pooled, torch.tensor([3.6]))
    assert rel_err(v2, v1) > 1e-3 and rel_err(v3, v1) < rel_err(v2, v1)


@pytest.mark.parametrize("family", FAMILIES)
def test_prediction_well_behaved(host, flow, fd, family):
    """Velocities of O(0.3) spread, changing smoothly with sigma and depending on the text; a 32 x 32 step is fast."""
    model, clip, _ = flow(family)
    cat, dog = _text(encode(host, clip, "a photo of a cat")), _text(encode(host, clip, "a painting of a dog"))
    g = torch.tensor([3.5])
    x = _latent(family, 1, 32, 32, seed=3)
    for sigma in (0.2, 0.8):
        s = torch.tensor([sigma])
        v = fd.host_velocity(model, x, s, *cat, g)
        v_dog = fd.host_velocity(model, x, s, *dog, g)
        v_near = fd.host_velocity(model, x, s * 1.01, *cat, g)
        assert 0.1 < v.std() < 1.0
        assert rel_err(v_dog, v) > 0.01
        assert rel_err(v_near, v) < 0.05
    t0 = time.perf_counter()
    fd.host_velocity(model, x, torch.tensor([0.5]), *cat, g)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("family", FAMILIES)
def test_euler_inversion_retraces(host, flow, fd, family):
    """The probability-flow ODE is well conditioned: Euler from the latent to the noise and back returns."""
    model, clip, _ = flow(family)
    ctx, pooled = _text(encode(host, clip, "a photo of a cat"))
    x0 = _latent(family, 1, 16, 16, seed=0)
    sigmas = torch.linspace(0.0, 1.0, 11)

    def v(x, s):
        return fd.host_velocity(model, x, s.view(1), ctx, pooled, torch.tensor([3.5]))

    x = x0.clone()
    for i in range(10):
        x = x + (sigmas[i + 1] - sigmas[i]) * v(x, sigmas[i])
    assert rel_err(x, x0) > 0.1  # it moved
    for i in range(10, 0, -1):
        x = x + (sigmas[i - 1] - sigmas[i]) * v(x, sigmas[i])
    err = rel_err(x, x0)
    print(f"{family}: 10-step Euler inversion and reconstruction, relative latent error {err:.2e}")
    assert err < 0.05


@pytest.mark.parametrize("family", FAMILIES[:3])
def test_weight_parity_with_diffusers(host, flow, fd, family):
    model, clip, _ = flow(family)
    transformer = fd.diffusers_transformer(model)
    assert type(transformer).__name__ == ("SD3Transformer2DModel" if family == "sd3" else "FluxTransformer2DModel")
    cat, dog = encode(host, clip, "a photo of a cat"), encode(host, clip, "a painting of a dog")
    ctx = torch.cat([cat[0][0], dog[0][0]])
    pooled = torch.cat([cat[0][1]["pooled_output"], dog[0][1]["pooled_output"]])
    x = torch.randn(2, 16, 32, 24, generator=torch.Generator().manual_seed(1))  # not square: rows vs columns
    sigma = torch.tensor([0.83, 0.27])
    guidance = torch.tensor([3.5, 2.0])
    ours = fd.host_velocity(model, x, sigma, ctx, pooled, guidance)
    theirs = fd.diffusers_velocity(transformer, x, sigma, ctx, pooled, guidance)
    err = rel_err(ours, theirs)
    print(f"{family}: diffusers parity, relative error {err:.2e}")
    assert err <= 1e-5
    # and through the host's apply_model (the denoised latent x - sigma v)
    import comfy.model_management
    comfy.model_management.load_models_gpu([model])
    kwargs = {"y": pooled}
    if family == "flux-dev":
        kwargs["guidance"] = guidance
    denoised = model.model.apply_model(x, sigma, c_crossattn=ctx, **kwargs)
    assert rel_err(denoised, x - sigma.view(-1, 1, 1, 1) * theirs) <= 1e-5


def test_qwen_image_weight_parity_with_diffusers(host, flow, fd):
    """The host's Qwen-Image and diffusers' QwenImageTransformer2DModel on the same weights (the host's keys
    are diffusers' names: loaded strictly, every weight used), host-format inputs: a batch of two sigmas on a
    non-square latent, then prompts of different lengths (separate calls on the host, as it runs such conds;
    one padded batch with its mask in diffusers, as its pipeline runs them), and through ``apply_model``."""
    import comfy.model_management

    model, clip, _ = flow("qwen-image")
    transformer = fd.diffusers_transformer(model)
    assert type(transformer).__name__ == "QwenImageTransformer2DModel"
    assert transformer.state_dict().keys() == model.model.diffusion_model.state_dict().keys()
    cat, dog = _text(encode(host, clip, "a photo of a cat"))[0], _text(encode(host, clip, "a painting of a dog"))[0]
    assert cat.shape == dog.shape
    ctx = torch.cat([cat, dog])
    x = _latent("qwen-image", 2, 32, 24, seed=1)   # not square: rows vs columns (an even patch grid, 16 x 12)
    sigma = torch.tensor([0.83, 0.27])
    ours = fd.host_velocity(model, x, sigma, ctx, None)
    theirs = fd.diffusers_velocity(transformer, x, sigma, ctx, None)
    err = rel_err(ours, theirs)
    print(f"qwen-image: diffusers parity, relative error {err:.2e}")
    assert ours.shape == x.shape and err <= 1e-5
    comfy.model_management.load_models_gpu([model])
    denoised = model.model.apply_model(x, sigma, c_crossattn=ctx)
    assert rel_err(denoised, x - sigma.view(-1, 1, 1, 1, 1) * theirs) <= 1e-5

    # prompts of different token counts: the host one call each, diffusers one padded batch and its mask
    longer = _text(encode(host, clip, "a red circle on a green field"))[0]
    assert longer.shape[1] > cat.shape[1]
    padded = torch.cat([torch.nn.functional.pad(cat, (0, 0, 0, longer.shape[1] - cat.shape[1])), longer])
    theirs = fd.diffusers_velocity(transformer, x, sigma, padded, None, text_lengths=[cat.shape[1], longer.shape[1]])
    ours = torch.cat([fd.host_velocity(model, x[:1], sigma[:1], cat, None),
                      fd.host_velocity(model, x[1:], sigma[1:], longer, None)])
    err = rel_err(ours, theirs)
    print(f"qwen-image: diffusers parity, prompts of 10 and 12 tokens (padded and masked there), relative error {err:.2e}")
    assert err <= 1e-5
    unmasked = fd.diffusers_velocity(transformer, x, sigma, padded, None)
    assert rel_err(unmasked, theirs) > 1e-3   # the padding is seen without the mask: the mask is what makes them equal


@pytest.mark.parametrize("h,w", [(16, 16), (32, 24), (12, 20), (20, 12)])
def test_qwen_image_rope_positions_agree_on_even_grids(flow, fd, h, w):
    """On an even patch grid (square or not) the host's and diffusers' rope positions are the same: the image
    centred on the grid (rows -H/4 .. H/4 - 1, columns alike, frame 0), the text from max(H/4, W/4) on, on all
    three axes."""
    model, _, _ = flow("qwen-image")
    transformer = fd.diffusers_transformer(model)
    host_img, host_txt = fd.host_rope_positions(model, h, w, 7)
    ref_img, ref_txt = fd.diffusers_rope_positions(transformer, h, w, 7)
    assert torch.equal(host_img, ref_img) and torch.equal(host_txt, ref_txt)
    assert host_img[:, 1].min() == -(h // 4) and host_img[:, 2].max() == w // 4 - 1
    assert torch.equal(host_txt[:, 0], torch.arange(7.0) + max(h // 4, w // 4))


@pytest.mark.parametrize("h,w", [(10, 10), (10, 12), (12, 14), (10, 14)])
def test_qwen_image_rope_positions_part_from_diffusers_on_odd_grids(flow, fd, h, w):
    """A finding, pinned: on an odd patch grid side (a latent side of 2 mod 4; Qwen-Image's own 1328 x 1328 is
    83 x 83 patches) the host's image positions run -(n-1)/2 .. (n-1)/2 on that axis, diffusers' -(n+1)/2 ..
    (n-3)/2 (ComfyUI 0.3.64 ``process_img``: ``linspace(0, n-1) - n // 2``; diffusers 0.42.1
    ``QwenEmbedRope``: ``-(n - n // 2) .. n // 2 - 1``): one position higher on the host; the text's are
    the same, so text and image sit one position closer on the host and the predictions differ (printed).
    Fails when either side changes."""
    model, clip, _ = flow("qwen-image")
    transformer = fd.diffusers_transformer(model)
    ctx = clip.encode_from_tokens_scheduled(clip.tokenize("a photo of a cat"))[0][0]
    host_img, host_txt = fd.host_rope_positions(model, h, w, ctx.shape[1])
    ref_img, ref_txt = fd.diffusers_rope_positions(transformer, h, w, ctx.shape[1])
    assert torch.equal(host_txt, ref_txt)
    odd = torch.tensor([0.0, (h // 2) % 2, (w // 2) % 2])
    assert torch.equal(host_img, ref_img + odd)
    x = _latent("qwen-image", 1, h, w, seed=2)
    sigma = torch.tensor([0.6])
    err = rel_err(fd.host_velocity(model, x, sigma, ctx, None), fd.diffusers_velocity(transformer, x, sigma, ctx, None))
    print(f"qwen-image {h}x{w} latent ({h // 2}x{w // 2} patches): host rows {host_img[:, 1].min():.0f}..{host_img[:, 1].max():.0f}, "
          f"columns {host_img[:, 2].min():.0f}..{host_img[:, 2].max():.0f}; diffusers rows {ref_img[:, 1].min():.0f}.."
          f"{ref_img[:, 1].max():.0f}, columns {ref_img[:, 2].min():.0f}..{ref_img[:, 2].max():.0f}; text from "
          f"{host_txt[0, 0]:.0f}; prediction relative difference {err:.2e}")
    assert err > 1e-4


def test_sd3_position_table_is_sd3s(flow, fd):
    """The host's SD3 position table is the fixed sin-cos table diffusers builds for this config."""
    model, _, _ = flow("sd3")
    cls, config = fd.diffusers_config(model)
    fresh = cls(**config)
    assert rel_err(model.model.diffusion_model.pos_embed, fresh.pos_embed.pos_embed) < 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_demo_model_node_builds_flow_families(host, tfm, family):
    model, clip, vae = call(host, "InvertEditDemoModel", family=family, seed=0)
    fam = host.pack.hostkit.family.model_family(model)
    assert fam.parameterisation == "flow" and vae.latent_channels == 16
    ref = tfm.build_tiny_flow_models(family, seed=0)[0].model.diffusion_model.state_dict()
    ours = model.model.diffusion_model.state_dict()
    assert all(torch.equal(ref[k], ours[k]) for k in ref)


def test_demo_model_node_default_is_sd1(host):
    schema = host.nodes.NODE_CLASS_MAPPINGS["InvertEditDemoModel"].define_schema()
    family = next(i for i in schema.inputs if i.id == "family")
    assert family.default == "sd1"
    assert set(FAMILIES) <= set(family.options)
