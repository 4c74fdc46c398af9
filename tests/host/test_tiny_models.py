"""The tiny random-weight models (invertedit/demo/tiny_models.py) and the Demo Model node, on the host."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import torch

FAMILIES = ("sd1", "sd2-v", "sdxl")
CONTEXT_DIM = {"sd1": 64, "sd2-v": 64, "sdxl": 96}


def _encode(host, clip, text):
    return host.nodes.CLIPTextEncode().encode(clip, text)[0]


def _image(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # a smooth picture rather than white noise
    img = torch.rand(1, 3, 8, 8, generator=g)
    img = torch.nn.functional.interpolate(img, size=(64, 64), mode="bilinear", align_corners=False)
    return img.permute(0, 2, 3, 1).contiguous()


def _predict(model, cond, x, sigma):
    """One host prediction (denoised) for a CLIPTextEncode conditioning, via apply_model."""
    import comfy.model_management

    # The host patches weights in place when it loads a patcher: make this one current.
    comfy.model_management.load_models_gpu([model])
    ctx, extra = cond[0][0], cond[0][1]
    kwargs = {}
    if model.model.adm_channels:
        kwargs["y"] = model.model.encode_adm(pooled_output=extra["pooled_output"], width=64, height=64)
    return model.model.apply_model(x, torch.tensor([sigma]), c_crossattn=ctx, **kwargs)


@pytest.mark.parametrize("family", FAMILIES)
def test_text_encode_shapes(host, tiny, family):
    _, clip, _ = tiny(family)
    cond = _encode(host, clip, "a photo of a cat")
    assert len(cond) == 1
    ctx, extra = cond[0]
    assert ctx.shape == (1, 77, CONTEXT_DIM[family])
    assert ctx.dtype == torch.float32
    assert torch.isfinite(ctx).all()
    assert "pooled_output" in extra
    if family == "sdxl":
        assert extra["pooled_output"].shape == (1, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_vae_round_trip_shapes(host, tiny, family):
    _, _, vae = tiny(family)
    latent = host.nodes.VAEEncode().encode(vae, _image())[0]["samples"]
    assert latent.shape == (1, 4, 8, 8)
    assert torch.isfinite(latent).all()
    # about the spread of real SD latents, so the 0.18215 scale keeps its meaning
    assert 1.0 < latent.std().item() < 20.0
    image = host.nodes.VAEDecode().decode(vae, {"samples": latent})[0]
    assert image.shape == (1, 64, 64, 3)
    assert torch.isfinite(image).all()
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert image.std() > 0.01  # not a flat image


@pytest.mark.parametrize("family", FAMILIES)
def test_ksampler_runs(host, tiny, family):
    model, clip, _ = tiny(family)
    pos, neg = _encode(host, clip, "a photo of a cat"), _encode(host, clip, "")
    latent = host.nodes.EmptyLatentImage().generate(64, 64, 1)[0]
    out = host.nodes.KSampler().sample(model, 7, 10, 7.5, "euler", "normal", pos, neg, latent)[0]
    assert out["samples"].shape == (1, 4, 8, 8)
    assert torch.isfinite(out["samples"]).all()


def test_model_types(tiny):
    from comfy.model_base import ModelType, SDXL

    assert tiny("sd1")[0].model.model_type == ModelType.EPS
    assert tiny("sd2-v")[0].model.model_type == ModelType.V_PREDICTION
    assert tiny("sdxl")[0].model.model_type == ModelType.EPS
    assert isinstance(tiny("sdxl")[0].model, SDXL)
    assert tiny("sdxl")[0].model.adm_channels == 64 + 6 * 256
    for family in FAMILIES:
        assert all(p.dtype == torch.float32 for p in tiny(family)[0].model.parameters())
        assert all(p.dtype == torch.float32 for p in tiny(family)[1].cond_stage_model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights(host, tiny, family):
    build = host.pack.demo.tiny_models.build_tiny_models
    a = tiny(family)
    b = build(family, seed=0)
    c = build(family, seed=1)
    for part_a, part_b, part_c in zip(_state_dicts(a), _state_dicts(b), _state_dicts(c)):
        assert part_a.keys() == part_b.keys()
        for k in part_a:
            assert torch.equal(part_a[k], part_b[k]), k
        assert any(not torch.equal(part_a[k], part_c[k]) for k in part_a if part_a[k].is_floating_point())


def _state_dicts(models):
    model, clip, vae = models
    return (model.model.diffusion_model.state_dict(), clip.cond_stage_model.state_dict(),
            vae.first_stage_model.state_dict())


@pytest.mark.parametrize("family", FAMILIES)
def test_prediction_well_behaved_and_text_dependent(host, tiny, family):
    model, clip, _ = tiny(family)
    cat, dog = _encode(host, clip, "a photo of a cat"), _encode(host, clip, "a painting of a dog")
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    for sigma in (0.5, 3.0):
        xs = x * sigma
        d_cat = _predict(model, cat, xs, sigma)
        d_dog = _predict(model, dog, xs, sigma)
        d_cat_t = _predict(model, cat, xs, sigma * 1.01)
        out = (xs - d_cat) / sigma  # eps for eps models (output gain 0.1: ~0.1 spread), a mix for v
        assert 0.02 < out.std().item() < 3.0
        assert (d_cat - d_dog).abs().max() > 1e-3 * sigma  # the prompt matters
        # smooth in sigma: a 1% change moves the prediction a little, not wildly
        assert (d_cat_t - d_cat).abs().max() < 0.2 * sigma


def test_ksampler_advanced_and_custom_sampler(host, tiny):
    nodes = host.nodes
    mapping = nodes.NODE_CLASS_MAPPINGS
    model, clip, vae = tiny("sd1")
    pos, neg = _encode(host, clip, "a photo of a cat"), _encode(host, clip, "")
    latent = nodes.VAEEncode().encode(vae, _image())[0]
    adv = nodes.KSamplerAdvanced().sample(model, "disable", 0, 10, 5.0, "euler", "ddim_uniform", pos, neg,
                                          latent, 3, 10, "disable")[0]
    assert adv["samples"].shape == (1, 4, 8, 8) and torch.isfinite(adv["samples"]).all()

    sigmas = mapping["BasicScheduler"]().get_sigmas(model, "ddim_uniform", 10, 1.0)[0]
    sampler = mapping["KSamplerSelect"]().get_sampler("euler")[0]
    guider = mapping["CFGGuider"]().get_guider(model, pos, neg, 5.0)[0]
    noise = mapping["DisableNoise"]().get_noise()[0]
    out, denoised = mapping["SamplerCustomAdvanced"]().sample(noise, guider, sampler, sigmas[3:], latent)
    assert out["samples"].shape == (1, 4, 8, 8) and torch.isfinite(out["samples"]).all()
    # same sigmas, same sampler, no noise: the two stock paths agree
    assert torch.allclose(out["samples"], adv["samples"], rtol=1e-4, atol=1e-4)


def test_lora_style_patch_applies(host, tiny):
    """A kohya-named LoRA through the host's loader (what LoraLoaderModelOnly does) patches the
    tiny UNet on a clone; the original model is left as it was."""
    import comfy.sd

    model, clip, _ = tiny("sd1")
    cond = _encode(host, clip, "a photo of a cat")
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q"
    g = torch.Generator().manual_seed(9)
    lora = {f"{name}.lora_down.weight": torch.randn(4, 32, generator=g),
            f"{name}.lora_up.weight": torch.randn(32, 4, generator=g),
            f"{name}.alpha": torch.tensor(4.0)}
    patched, _ = comfy.sd.load_lora_for_models(model, None, lora, 1.0, 0.0)
    assert list(patched.patches) == ["diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight"]
    assert not model.patches

    base = _predict(model, cond, x * 2.0, 2.0)
    changed = _predict(patched, cond, x * 2.0, 2.0)
    assert (changed - base).abs().max() > 1e-3
    latent = {"samples": x}
    run = lambda m: host.nodes.KSampler().sample(m, 0, 3, 3.0, "euler", "normal", cond, cond, latent, denoise=0.5)[0]["samples"]
    s_base, s_lora, s_base2 = run(model), run(patched), run(model)
    assert (s_lora - s_base).abs().max() > 1e-3
    assert torch.equal(s_base, s_base2)
    assert torch.equal(_predict(model, cond, x * 2.0, 2.0), base)


def test_demo_node(host):
    node = host.nodes.NODE_CLASS_MAPPINGS["InvertEditDemoModel"]
    schema = node.define_schema()
    assert "random" in schema.description.lower() and "test" in schema.description.lower()
    for family in ("sd1", "sdxl"):
        result = node.execute(family=family, seed=0).result
        model, clip, vae = result
        cond = _encode(host, clip, "hello")
        latent = host.nodes.VAEEncode().encode(vae, _image())[0]
        out = host.nodes.KSampler().sample(model, 0, 3, 2.0, "euler", "normal", cond, cond, latent, denoise=0.5)[0]
        assert torch.isfinite(out["samples"]).all()
    # fresh objects per call: no shared mutable state between cached outputs
    a = node.execute(family="sd1", seed=0).result
    b = node.execute(family="sd1", seed=0).result
    assert a[0] is not b[0] and a[0].model is not b[0].model
    assert a[1].cond_stage_model is not b[1].cond_stage_model


class _Server:
    client_id = None
    last_node_id = None

    def __init__(self):
        self.messages = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))


def test_demo_workflow_through_executor(host):
    """The demo node and the stock nodes as the host runs a queued prompt (validation, caching)."""
    execution = host.execution
    prompt = {
        "1": {"class_type": "InvertEditDemoModel", "inputs": {"family": "sd2-v", "seed": 3}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "seed": 1, "steps": 10, "cfg": 7.5, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0],
            "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }
    valid = asyncio.run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))
    assert valid[0], valid
    executor = execution.PromptExecutor(_Server(), cache_type=False)
    executor.execute(prompt, str(uuid.uuid4()), {}, valid[2])
    assert executor.success, executor.status_messages
    assert executor.history_result["outputs"]["7"]["images"]
    executor.execute(prompt, str(uuid.uuid4()), {}, valid[2])  # second run: served from the cache
    assert executor.success, executor.status_messages
    cached = [d for e, d in executor.status_messages if e == "execution_cached"][0]["nodes"]
    assert "1" in cached and "5" in cached


@pytest.mark.parametrize("family,parameterisation", [("sd1", "eps"), ("sd2-v", "v"), ("sdxl", "eps")])
def test_the_model_family_is_read_from_the_model(host, tiny, family, parameterisation):
    """``hostkit/family.py`` reads each tiny model's sampling space, layout and context width once, and
    hands the pure layer its parameterisation; the layout functions hand on what it read."""
    read = host.pack.hostkit.family
    model = tiny(family)[0]
    found = read.model_family(model)
    assert (found.parameterisation, found.layout, found.context_dim) == (parameterisation, "unet", CONTEXT_DIM[family])
    assert found.editable and read.model_family(model) is found and read.model_family(model.clone()) is found
    assert read.parameterisation_of(found).name == parameterisation
    assert host.pack.hostkit.sampling.check_model_family(model, "Test") is found
    assert set(dict(found.attention_levels)) <= set(found.transformer_blocks)
    assert host.pack.hostkit.layout.transformer_blocks(model) == list(found.transformer_blocks)


def test_a_flow_model_is_refused_by_name(host, tiny):
    """The tiny sd1 UNet sampled as a rectified-flow model (the host's CONST sampling, as ModelSamplingSD3
    patches it in) reads as a flow model, and the pack's nodes refuse it with a clear message."""
    import comfy.model_sampling

    class FlowSampling(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
        pass

    model = tiny("sd1")[0].clone()
    model.add_object_patch("model_sampling", FlowSampling(model.model.model_config))
    found = host.pack.hostkit.family.model_family(model)
    assert (found.parameterisation, found.layout, found.editable) == ("flow", "unet", False)
    assert host.pack.hostkit.family.parameterisation_of(found).flow
    with pytest.raises(host.pack.hostkit.errors.NodeInputError,
                       match=r"Test: input 'model' is SD15 \(UNetModel, FlowSampling sampling\); this node supports "
                             r"Stable Diffusion UNet checkpoints.*For Flux.1, SD3 and Qwen-Image use the pack.s flow nodes"):
        host.pack.hostkit.sampling.check_model_family(model, "Test")
