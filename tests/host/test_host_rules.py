"""Host rules kept (issue 13): the attention patches pass the layer's ``attn_precision`` through
and compute their own maps upcast; SEGA and LEDITS++ Guidance run the model's pre-CFG functions
and give post-CFG functions ``cond_scale``; every node runs on a model loaded in half precision.

Half precision is loaded as the host loads a checkpoint (``comfy.sd.load_state_dict_guess_config``):
``model_config.set_inference_dtype(unet_dtype, manual_cast_dtype)``, the model built by the
config from it, the weights loaded from a state dict of that dtype (``load_model_weights``), a
``ModelPatcher`` on the load device. The (weights, manual cast) pairs are those
``comfy.model_management.unet_manual_cast`` gives on real devices: fp16 and bf16 weights on a
GPU that computes in them (no manual cast: the UNet, and so every patch, runs in half
precision), bf16 weights on a GPU without bf16 (cast to fp16 layer by layer), fp16 weights on
a device without fp16 (this CPU: cast to fp32). The weights are the tiny sd1 model's, cast.
"""
from __future__ import annotations

import copy

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"
STEPS = 3

LOADS = {   # name: (weight dtype, manual cast dtype) as unet_manual_cast picks them
    "fp16": (torch.float16, None),                 # fp16 checkpoint, GPU computing in fp16
    "bf16": (torch.bfloat16, None),                # bf16 checkpoint, GPU with bf16 (Ampere and later)
    "bf16-cast-fp16": (torch.bfloat16, torch.float16),   # bf16 weights, GPU without bf16 (T4, Turing)
    "fp16-cast-fp32": (torch.float16, torch.float32),    # fp16 weights, device without fp16 (CPU)
}


def load_half(host, tiny, family: str, weight_dtype: torch.dtype, manual_cast: torch.dtype | None):
    """The tiny ``family`` UNet loaded with ``weight_dtype`` weights, as the host loads a checkpoint."""
    import comfy.model_base
    import comfy.model_management
    import comfy.model_patcher

    patcher = tiny(family)[0]
    # the shared tiny model's weights as they are: another test's clone may have left its weight patches (a LoRA)
    # in them, which loading the plain patcher takes out (the host patches weights in place while a clone is loaded)
    comfy.model_management.load_models_gpu([patcher])
    reference = patcher.model
    spec = host.pack.demo.tiny_models.SPECS[family]
    config = spec.config_class(copy.deepcopy(spec.unet_config))
    config.unet_config.update(spec.unet_overrides)
    config.set_inference_dtype(weight_dtype, manual_cast)
    model_class = comfy.model_base.SDXL if family == "sdxl" else comfy.model_base.BaseModel
    model = model_class(config, model_type=spec.model_type, device=torch.device("cpu"))
    sd = {"model.diffusion_model." + k: v.to(weight_dtype) for k, v in reference.diffusion_model.state_dict().items()}
    model.load_model_weights(sd, "model.diffusion_model.")
    loaded = model.diffusion_model.state_dict()
    assert loaded.keys() == reference.diffusion_model.state_dict().keys()
    assert all(v.dtype == weight_dtype for v in loaded.values() if v.is_floating_point())
    model.eval()
    model.requires_grad_(False)
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


@pytest.fixture(scope="module")
def half(host, tiny):
    """``half(load, family="sd1")`` -> (MODEL, CLIP, VAE) with the UNet loaded as ``LOADS[load]``."""
    cache = {}

    def get(load: str, family: str = "sd1"):
        if (load, family) not in cache:
            _, clip, vae = tiny(family)
            cache[(load, family)] = (load_half(host, tiny, family, *LOADS[load]), clip, vae)
        return cache[(load, family)]

    return get


def source_latent(seed=0):
    return {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 5.0}


def sample(host, model, latent, positive, negative, cfg=5.0):
    return call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=STEPS, cfg=cfg,
                sampler_name="ddim", scheduler="ddim_uniform", positive=positive, negative=negative, latent_image=latent,
                start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def custom(host, guider, sampler, sigmas, latent, noise=None):
    return call(host, "SamplerCustomAdvanced", noise=noise or call(host, "DisableNoise")[0], guider=guider,
                sampler=sampler, sigmas=sigmas, latent_image=latent)[0]["samples"]


def finite(t: torch.Tensor, shape: tuple, dtype=torch.float32) -> torch.Tensor:
    assert tuple(t.shape) == shape, f"shape {tuple(t.shape)}, expected {shape}"
    assert t.dtype == dtype, f"dtype {t.dtype}, expected {dtype}"
    assert torch.isfinite(t).all(), "non-finite values"
    return t


def ddim_invert(host, model, clip):
    return call(host, "InvertEditDDIMInvert", model=model, latent=source_latent(), positive=encode(host, clip, SOURCE),
                steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)


def mask_8x8():
    m = torch.zeros(1, 64, 64)
    m[:, 16:48, 16:48] = 1.0
    return m


# The editors as the test runs them: name -> fn(host, model, clip) -> [(what, tensor, shape, dtype)].

def run_inject(host, model, clip, **options):
    inv, lat, _ = ddim_invert(host, model, clip)
    m, pair, pair_lat = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=TARGET, **{"mode": "replace", "reweight": "", "cross_replace": 0.8,
                                                      "self_replace": 0.4, "local_blend": "blend_source_words" in options,
                                                      **options})
    return [("pair", sample(host, m, pair_lat, pair, encode(host, clip, "")), (2, 4, 8, 8))]


def run_inject_direct(host, model, clip):
    inv, lat, _ = ddim_invert(host, model, clip)
    m, pair, pair_lat = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=TARGET, mode="refine", reweight="square:2", cross_replace=0.8, self_replace=0.4,
                             local_blend=False)
    m = call(host, "InvertEditApplyInversion", model=m, inversion=call(host, "InvertEditDirectInversion", inversion=inv)[0])[0]
    m = call(host, "InvertEditLatentBlend", model=m, latent=pair_lat, mask=mask_8x8(), start=0.0, end=1.0)[0]
    return [("pair", sample(host, m, pair_lat, pair, encode(host, clip, ""), cfg=1.0), (2, 4, 8, 8))]


def run_masactrl(host, model, clip, masks=False):
    inv, lat, _ = ddim_invert(host, model, clip)
    extra = {"source_mask": mask_8x8(), "target_mask": mask_8x8().roll(8, -1)} if masks else {}
    m, pair, pair_lat = call(host, "InvertEditMasaCtrl", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=TARGET, start_step=0, start_layer=0, **extra)
    return [("pair", sample(host, m, pair_lat, pair, encode(host, clip, "")), (2, 4, 8, 8))]


def run_pnp(host, model, clip):
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=source_latent(), positive=encode(host, clip, ""),
                       steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    m, pair, pair_lat = call(host, "InvertEditPlugAndPlay", model=model, clip=clip, latent=lat, source_prompt="",
                             target_prompt=TARGET, feature_injection=0.8, self_attention_injection=0.5)
    return [("pair", sample(host, m, pair_lat, pair, encode(host, clip, "")), (2, 4, 8, 8))]


def run_store(host, model, clip):
    inv = ddim_invert(host, model, clip)[0]
    heat, mask = call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=SOURCE,
                      words="circle, background", start=0.0, end=1.0, threshold=0.3)
    return [("heatmaps", heat, (7, 64, 64, 3)), ("mask", mask, (1, 64, 64))]   # one per word of the prompt


def sega_concepts(host, clip):
    out = None
    for text, direction in (("a green square", "add"), ("a red circle", "remove")):
        out = call(host, "InvertEditSEGAConcept", conditioning=encode(host, clip, text), direction=direction, scale=5.0,
                   warmup=0, cooldown=0, threshold=0.9, weight=1.0, concepts=out)[0]
    return out


def run_sega(host, model, clip):
    guider = call(host, "InvertEditSEGAGuidance", model=model, positive=encode(host, clip, SOURCE),
                  negative=encode(host, clip, ""), cfg=7.5, concepts=sega_concepts(host, clip), momentum_scale=0.1,
                  momentum_beta=0.4)[0]
    sigmas = call(host, "BasicScheduler", model=model, scheduler="ddim_uniform", steps=STEPS, denoise=1.0)[0]
    out = custom(host, guider, call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas,
                 {"samples": torch.zeros(1, 4, 8, 8)}, noise=call(host, "RandomNoise", noise_seed=42)[0])
    return [("latent", out, (1, 4, 8, 8))]


def ledits_concepts(host, clip):
    out = None
    for text, direction in (("a yellow background", "add"), ("a blue background", "remove")):
        out = call(host, "InvertEditLEDITSConcept", clip=clip, text=text, direction=direction, scale=5.0, warmup=0,
                   cooldown=0, threshold=0.9, weight=1.0, concepts=out)[0]
    return out


def ddpm_invert(host, model, clip):
    return call(host, "InvertEditDDPMInvert", model=model, latent=source_latent(), positive=encode(host, clip, SOURCE),
                negative=encode(host, clip, ""), steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=3.5, seed=7)


def run_ledits(host, model, clip, mask="intersect", inverted_with=None):
    neg = encode(host, clip, "")
    inv, lat, sigmas = ddpm_invert(host, inverted_with or model, clip)
    guider = call(host, "InvertEditLEDITSGuidance", model=model, negative=neg, concepts=ledits_concepts(host, clip),
                  mask=mask)[0]
    out = custom(host, guider, call(host, "InvertEditDDPMSampler", inversion=inv)[0], sigmas, lat)
    return [("latent", out, (1, 4, 8, 8))]


def run_inversions(host, model, clip):
    """The inversion nodes not above: EDICT, Negative-Prompt Inversion, Null-Text Optimize, DiffEdit Mask."""
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    outs = []
    inv, lat, sigmas = call(host, "InvertEditEDICTInvert", model=model, latent=source_latent(), positive=pos,
                            steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=1.0, mixing=0.93)
    guider = call(host, "CFGGuider", model=model, positive=pos, negative=neg, cfg=1.0)[0]
    outs.append(("edict", custom(host, guider, call(host, "InvertEditEDICTSampler", inversion=inv)[0], sigmas, lat),
                 (1, 4, 8, 8)))
    inv, lat, _ = ddim_invert(host, model, clip)
    npi = call(host, "InvertEditNegativePromptInversion", inversion=inv, positive=pos)[0]
    outs.append(("negative-prompt", sample(host, call(host, "InvertEditApplyInversion", model=model, inversion=npi)[0],
                                           lat, pos, neg, cfg=3.0), (1, 4, 8, 8)))
    nt = call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=pos, negative=neg, cfg=3.0,
              inner_steps=2, learning_rate=0.01, early_stop=False)[0]
    outs.append(("null-text", sample(host, call(host, "InvertEditApplyInversion", model=model, inversion=nt)[0],
                                     lat, pos, neg, cfg=3.0), (1, 4, 8, 8)))
    mask = call(host, "InvertEditDiffEditMask", model=model, latent=source_latent(), source=pos,
                target=encode(host, clip, TARGET), strength=0.5, samples=2, threshold=0.5, seed=0)[0]
    outs.append(("diffedit mask", mask, (1, 64, 64)))
    return outs


EDITORS = {
    "attention inject replace": run_inject,
    "attention inject local blend": lambda h, m, c: run_inject(h, m, c, blend_source_words="circle",
                                                               blend_target_words="square", blend_start=0.0),
    "attention inject refine + direct + latent blend": run_inject_direct,
    "masactrl": run_masactrl,
    "masactrl masked": lambda h, m, c: run_masactrl(h, m, c, masks=True),
    "plug-and-play": run_pnp,
    "attention store": run_store,
    "sega": run_sega,
    "ledits++": run_ledits,
    "inversions": run_inversions,
}


# (a) attn_precision -----------------------------------------------------------------------------

def test_explicit_maps_upcast_half_inputs(host):
    """The pack's own maps are computed in float32 for half inputs: logits past fp16's range
    (inf in fp16, NaN maps) stay finite, and match float32 maps of the same (rounded) inputs."""
    maps = host.pack.attention.maps
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 16, 128, generator=g) * 40
    k = torch.cat([q, torch.randn(1, 61, 128, generator=g) * 40], dim=1)   # q.k ~ 40^2 * 64 per head
    for dtype in (torch.float16, torch.bfloat16):
        qh, kh = q.to(dtype), k.to(dtype)
        if dtype == torch.float16:   # what computing in fp16 would give
            assert torch.isinf(qh[..., :64] @ kh[..., :64].transpose(-1, -2)).any()
        probs = maps.attention_probs(qh, kh, 2)
        assert probs.dtype == dtype and torch.isfinite(probs).all()
        reference = maps.attention_probs(qh.float(), kh.float(), 2)
        assert (probs.float() - reference).abs().max() < 1e-2
        assert maps.attention_probs(qh, kh, 2, dtype=torch.float32).dtype == torch.float32
        out = maps.attend(probs, kh[:, :, :])
        assert out.dtype == dtype and torch.isfinite(out).all()
    assert maps.compute_dtype(torch.float16) == torch.float32 and maps.compute_dtype(torch.bfloat16) == torch.float32
    assert maps.compute_dtype(torch.float32, torch.float64) == torch.float64


OWN_MAPS = {"attention store", "ledits++"}   # (the others' maps: attention/*.py)
NO_MAPS = {"plug-and-play",   # self-attention injection only
           "attention inject replace", "attention inject refine + direct + latent blend",   # cross-attention edits as value mixes in the host's own call (issue 23)
           "attention inject local blend"}   # its words' maps: rows of the host's own call, summed in float32
SPIED = ["attention inject replace", "attention inject local blend", "attention inject refine + direct + latent blend",
         "masactrl masked", "plug-and-play", "attention store", "ledits++"]


@pytest.mark.parametrize("family", ["sd1", "sd2-v"])
def test_attention_patches_pass_attn_precision(host, half, monkeypatch, family):
    """On an fp16 UNet, every attention patch runs the host's optimized_attention with the layer's
    attn_precision (SD2.x: float32) and its transformer options, and computes its maps in float32."""
    model, clip, _ = half("fp16", family)
    expected = model.model.model_config.unet_config.get("attn_precision")
    assert expected == (torch.float32 if family == "sd2-v" else None)
    adapters, maps = host.pack.hostkit.attention_maps, host.pack.attention.maps
    calls, computed = [], []
    real_attention, real_dtype = adapters.optimized_attention, maps.compute_dtype

    def attention_spy(q, k, v, heads, *args, **kwargs):
        calls.append((q.dtype, kwargs.get("attn_precision", "not passed"), "transformer_options" in kwargs))
        return real_attention(q, k, v, heads, *args, **kwargs)

    def dtype_spy(dtype, precision=None):
        out = real_dtype(dtype, precision)
        computed.append((dtype, precision, out))
        return out

    for module in (adapters, host.pack.techniques.prompt_to_prompt.glue, host.pack.techniques.masactrl.glue):   # where ours import it
        if hasattr(module, "optimized_attention"):
            monkeypatch.setattr(module, "optimized_attention", attention_spy)
    monkeypatch.setattr(maps, "compute_dtype", dtype_spy)
    for name in SPIED:
        calls.clear()
        computed.clear()
        EDITORS[name](host, model, clip)
        assert calls, f"{name}: no attention patch ran"
        assert {c[0] for c in calls} == {torch.float16}, f"{name}: the UNet did not run in fp16"
        assert {c[1] for c in calls} == {expected}, f"{name}: attn_precision passed {set(c[1] for c in calls)}"
        assert all(c[2] for c in calls), f"{name}: transformer_options not passed"
        if name in NO_MAPS:   # attends with the source's queries and keys in the host's own call: no maps
            assert not computed, f"{name}: maps computed"
            continue
        assert computed, f"{name}: no maps computed"
        assert {c[2] for c in computed} == {torch.float32}, f"{name}: maps computed in {set(c[2] for c in computed)}"
        if expected is not None and name in OWN_MAPS:   # maps the adapters take themselves get the layer's precision
            assert any(c[1] == expected for c in computed), f"{name}: attn_precision not given to the maps"


# (b) pre- and post-CFG functions ---------------------------------------------------------------------------

PRE_KEYS = {"conds", "conds_out", "cond_scale", "timestep", "input", "sigma", "model", "model_options"}
POST_KEYS = {"denoised", "cond", "uncond", "cond_scale", "model", "uncond_denoised", "cond_denoised", "sigma",
             "model_options", "input"}


@pytest.mark.parametrize("guidance", ["sega", "ledits++"])
def test_guiders_run_pre_cfg_functions_and_give_post_cfg_cond_scale(host, tiny, guidance):
    model, clip, _ = tiny("sd1")
    pre, post = [], []

    def uncond_everywhere(args):   # every prediction becomes the uncond's: no guidance is left
        pre.append((set(args), args["cond_scale"], len(args["conds"]), len(args["conds_out"])))
        return [args["conds_out"][1]] * len(args["conds_out"])

    def post_fn(args):
        post.append((set(args), args["cond_scale"]))
        return args["denoised"]

    m = model.clone()
    m.set_model_sampler_pre_cfg_function(uncond_everywhere)
    m.set_model_sampler_post_cfg_function(post_fn)
    neg = encode(host, clip, "")
    if guidance == "sega":
        out = run_sega(host, m, clip)[0][1]
        cfg, conds = 7.5, 4
        # the negative's prediction alone: cfg 1 with the negative as the prompt
        sigmas = call(host, "BasicScheduler", model=model, scheduler="ddim_uniform", steps=STEPS, denoise=1.0)[0]
        plain = custom(host, call(host, "CFGGuider", model=model, positive=neg, negative=neg, cfg=1.0)[0],
                       call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas, {"samples": torch.zeros(1, 4, 8, 8)},
                       noise=call(host, "RandomNoise", noise_seed=42)[0])
        edited = run_sega(host, model, clip)[0][1]
    else:
        out = run_ledits(host, m, clip, inverted_with=model)[0][1]
        cfg, conds = 1.0, 3
        inv, lat, sigmas = ddpm_invert(host, model, clip)
        plain = custom(host, call(host, "CFGGuider", model=model, positive=neg, negative=neg, cfg=1.0)[0],
                       call(host, "InvertEditDDPMSampler", inversion=inv)[0], sigmas, lat)
        edited = run_ledits(host, model, clip)[0][1]
    assert len(pre) == STEPS and len(post) == STEPS
    assert all(keys >= PRE_KEYS and scale == cfg and n == conds and n_out == conds for keys, scale, n, n_out in pre)
    assert all(keys >= POST_KEYS and scale == cfg for keys, scale in post)
    # the pre-CFG function's result is what the guider combines, and [1] is the uncond (negative) in both
    assert rel_err(out, plain) < 1e-4
    assert rel_err(edited, plain) > 1e-3


# (c) every node on a half-precision UNet --------------------------------------------------------------------

BINARY = {"mask", "diffedit mask"}   # thresholded outputs: a rounding flips pixels at the threshold
CLOSE = {"fp16": 0.02, "fp16-cast-fp32": 0.005, "bf16-cast-fp16": 0.02, "bf16": 0.06}   # rel. error to fp32


@pytest.fixture(scope="module")
def float32_results(host, tiny):
    model, clip, _ = tiny("sd1")
    return {name: run(host, model, clip) for name, run in EDITORS.items()}


@pytest.mark.parametrize("load", sorted(LOADS))
def test_every_node_runs_on_a_half_precision_unet(host, half, float32_results, load):
    """Finite outputs of the right shape and dtype (LATENT, IMAGE and MASK stay float32 whatever
    the UNet's dtype), close to the float32 model's (measured: at most 0.4x these bounds)."""
    model, clip, _ = half(load)
    weight, cast = LOADS[load]
    assert model.model.get_dtype() == weight and model.model.manual_cast_dtype == cast
    failures = []
    for name, run in EDITORS.items():
        try:
            for (what, tensor, shape), (_, reference, _) in zip(run(host, model, clip), float32_results[name]):
                try:
                    finite(tensor, shape)
                    err = rel_err(tensor, reference)
                    assert what in BINARY or err < CLOSE[load], f"{err:.2e} from the float32 model's"
                except AssertionError as e:
                    failures.append(f"{name} ({what}): {e}")
        except Exception as e:   # noqa: BLE001  (collect every node's failure, not the first)
            failures.append(f"{name}: {type(e).__name__}: {e}")
    assert not failures, f"{load}: " + "; ".join(failures)


def test_a_pre_cfg_function_dropping_predictions_is_named(host, tiny):
    model, clip, _ = tiny("sd1")
    m = model.clone()
    m.set_model_sampler_pre_cfg_function(lambda args: args["conds_out"][:2])   # only [cond, uncond]
    with pytest.raises(host.pack.hostkit.errors.NodeInputError, match="SEGA Guidance: a pre-CFG function .* returned 2 "
                                                                         "predictions for 4 conds"):
        run_sega(host, m, clip)
