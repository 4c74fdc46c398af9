"""The tiny host models and diffusers models on the same weights agree (tests/diffusers_bridge.py).

Conventions (HOST-NOTES "Matching diffusers on the same weights"): the host's UNet sees
``x / sqrt(sigma^2 + 1)`` at ``model_sampling.timestep(sigma)``; the host's sampler state is
the diffusers latent times ``sqrt(1 + sigma^2)``; host LATENTs are diffusers latents / 0.18215.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

FAMILIES = ("sd1", "sd2-v", "sdxl")
# SDXL size conditioning: encode_adm alone assumes 768; inside sampling the host fills in the
# latent's size x 8 when the conditioning carries none (samplers.encode_model_conds).
SDXL_SIZE = 768.0


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _encode(host, clip, text):
    return host.nodes.CLIPTextEncode().encode(clip, text)[0]


def _added_cond(family, pooled, size=SDXL_SIZE):
    if family != "sdxl":
        return None
    s = float(size)
    time_ids = torch.tensor([[s, s, 0.0, 0.0, s, s]]).repeat(pooled.shape[0], 1)
    return {"text_embeds": pooled, "time_ids": time_ids}


@pytest.mark.parametrize("family", FAMILIES)
def test_one_unet_call(host, tiny, unets, family):
    import comfy.model_management

    model, clip, _ = tiny(family)
    unet = unets(family)
    comfy.model_management.load_models_gpu([model])  # this patcher's weights are current
    base = model.model
    ms = base.model_sampling
    cond, uncond = _encode(host, clip, "a photo of a cat"), _encode(host, clip, "")
    ctx = torch.cat([uncond[0][0], cond[0][0]])
    pooled = torch.cat([uncond[0][1]["pooled_output"], cond[0][1]["pooled_output"]])
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 4.0
    sigma = torch.tensor([4.0, 0.7])

    seen = {}

    def hook(module, args, kwargs, output):
        seen["x"], seen["t"] = args[0].clone(), kwargs.get("timesteps", args[1] if len(args) > 1 else None).clone()
        seen["out"] = output.clone()

    handle = base.diffusion_model.register_forward_hook(hook, with_kwargs=True)
    try:
        kwargs = {}
        if family == "sdxl":
            kwargs["y"] = torch.cat([base.encode_adm(pooled_output=p[None]) for p in pooled])
        denoised = base.apply_model(x, sigma, c_crossattn=ctx, **kwargs)
    finally:
        handle.remove()

    x_in = x / (sigma ** 2 + 1).sqrt()[:, None, None, None]
    t = ms.timestep(sigma).float()
    assert torch.allclose(seen["x"], x_in, rtol=1e-6, atol=1e-6)
    assert torch.allclose(seen["t"].float(), t)

    out = unet(x_in, t, encoder_hidden_states=ctx, added_cond_kwargs=_added_cond(family, pooled)).sample
    rel = _rel(out, seen["out"])
    print(f"\n[{family}] one UNet call: max abs {(out - seen['out']).abs().max().item():.2e}, rel {rel:.2e}")
    assert rel < 1e-5
    # and through the host's prediction-type conversion
    assert _rel(ms.calculate_denoised(sigma, out, x), denoised) < 1e-5


def test_text_encoder_sd1(host, tiny, bridge):
    _, clip, _ = tiny("sd1")
    te = bridge.diffusers_text_encoder(clip)
    text = "a photo of a cat riding a bicycle"
    cond = _encode(host, clip, text)
    ids = torch.tensor([[tok for tok, _ in clip.tokenize(text)["l"][0]]])
    out = te(ids)
    assert _rel(out.last_hidden_state, cond[0][0]) < 1e-5
    assert _rel(out.pooler_output, cond[0][1]["pooled_output"]) < 1e-5
    print(f"\n[sd1] text: max abs {(out.last_hidden_state - cond[0][0]).abs().max().item():.2e}")


def test_text_encoder_sd2(host, tiny, bridge):
    _, clip, _ = tiny("sd2-v")
    te = bridge.diffusers_text_encoder(clip)
    text = "a photo of a cat riding a bicycle"
    cond = _encode(host, clip, text)
    ids = torch.tensor([[tok for tok, _ in clip.tokenize(text)["h"][0]]])
    hidden = te(ids, output_hidden_states=True).hidden_states[-2]  # SD2 reads the penultimate layer
    emb = bridge.final_layer_norm(te)(hidden)
    print(f"\n[sd2-v] text: max abs {(emb - cond[0][0]).abs().max().item():.2e}")
    assert _rel(emb, cond[0][0]) < 1e-5


def test_text_encoders_sdxl(host, tiny, bridge):
    _, clip, _ = tiny("sdxl")
    te_l, te_g = bridge.diffusers_text_encoders_sdxl(clip)
    text = "a photo of a cat riding a bicycle"
    cond = _encode(host, clip, text)
    tokens = clip.tokenize(text)
    ids_l = torch.tensor([[tok for tok, _ in tokens["l"][0]]])
    ids_g = torch.tensor([[tok for tok, _ in tokens["g"][0]]])
    out_l = te_l(ids_l, output_hidden_states=True)
    out_g = te_g(ids_g, output_hidden_states=True)
    # diffusers' SDXL pipeline: penultimate layers (no final norm) side by side, clip_g's text_embeds
    emb = torch.cat([out_l.hidden_states[-2], out_g.hidden_states[-2]], dim=-1)
    print(f"\n[sdxl] text: max abs {(emb - cond[0][0]).abs().max().item():.2e}, "
          f"pooled {(out_g.text_embeds - cond[0][1]['pooled_output']).abs().max().item():.2e}")
    assert _rel(emb, cond[0][0]) < 1e-5
    assert _rel(out_g.text_embeds, cond[0][1]["pooled_output"]) < 1e-5


def test_vae_sd1(host, tiny, bridge):
    _, _, vae = tiny("sd1")
    dvae = bridge.diffusers_vae(vae)
    g = torch.Generator().manual_seed(1)
    latent = torch.randn(1, 4, 8, 8, generator=g) * 3.0
    image = host.nodes.VAEDecode().decode(vae, {"samples": latent})[0]
    ref = ((dvae.decode(latent).sample + 1.0) / 2.0).clamp(0, 1).permute(0, 2, 3, 1)
    print(f"\n[sd1] VAE decode: max abs {(image - ref).abs().max().item():.2e}")
    assert (image - ref).abs().max() < 1e-5

    pixels = torch.rand(1, 64, 64, 3, generator=g)
    host_latent = host.nodes.VAEEncode().encode(vae, pixels)[0]["samples"]
    ref_latent = dvae.encode(pixels.permute(0, 3, 1, 2) * 2.0 - 1.0).latent_dist.mode()
    print(f"[sd1] VAE encode: rel {_rel(ref_latent, host_latent):.2e}")
    assert _rel(ref_latent, host_latent) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_ddim_run_matches_diffusers(host, tiny, unets, family):
    """10 deterministic DDIM steps at CFG 7.5: the host's ``ddim`` sampler on ``ddim_uniform``
    against diffusers' DDIMScheduler (steps_offset=1, set_alpha_to_one=True)."""
    from diffusers import DDIMScheduler

    import comfy.sample

    model, clip, _ = tiny(family)
    unet = unets(family)
    cond, uncond = _encode(host, clip, "a photo of a cat"), _encode(host, clip, "")
    steps, cfg, seed = 10, 7.5, 42
    empty = {"samples": torch.zeros(1, 4, 8, 8)}
    host_out = host.nodes.KSampler().sample(model, seed, steps, cfg, "ddim", "ddim_uniform", cond, uncond, empty)[0]["samples"]

    ms = model.model.model_sampling
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True,
                          steps_offset=1, prediction_type="v_prediction" if family == "sd2-v" else "epsilon")
    sched.set_timesteps(steps)
    sigma0 = ms.sigma(sched.timesteps[:1].float())
    noise = comfy.sample.prepare_noise(empty["samples"], seed)
    latent = noise * sigma0 / (1 + sigma0 ** 2).sqrt()  # host starts at noise * sigma_0
    ctx = torch.cat([uncond[0][0], cond[0][0]])
    pooled = torch.cat([uncond[0][1]["pooled_output"], cond[0][1]["pooled_output"]])
    for t in sched.timesteps:
        pred = unet(torch.cat([latent, latent]), t, encoder_hidden_states=ctx,
                    added_cond_kwargs=_added_cond(family, pooled, size=8 * latent.shape[-1])).sample
        pred_u, pred_c = pred.chunk(2)
        latent = sched.step(pred_u + cfg * (pred_c - pred_u), t, latent).prev_sample
    ref = latent / model.model.latent_format.scale_factor
    rel = _rel(host_out, ref)
    print(f"\n[{family}] 10-step DDIM, CFG {cfg}: max abs {(host_out - ref).abs().max().item():.2e}, rel {rel:.2e}")
    assert rel < 1e-4
