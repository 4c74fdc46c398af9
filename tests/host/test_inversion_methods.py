"""Negative-prompt and direct inversion under classifier-free guidance, through the stock sampler."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, reconstruct, rel_err

FAMILIES = ["sd1", "sd2-v", "sdxl"]
PROMPT = "a red circle on a blue background"
CFG = 7.5


def source_latent(seed=0):
    return {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 5.0}


def setup(host, tiny, family, steps=20):
    model, clip, _ = tiny(family)
    pos, empty = encode(host, clip, PROMPT), encode(host, clip, "")
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=source_latent(), positive=pos, steps=steps,
                       scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return model, pos, empty, inv, lat


def applied(host, model, inversion):
    return call(host, "InvertEditApplyInversion", model=model, inversion=inversion)[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_direct_inversion_reconstructs_exactly_under_guidance(host, tiny, family):
    model, pos, empty, inv, lat = setup(host, tiny, family)
    direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
    out = reconstruct(host, applied(host, model, direct), lat, pos, empty, steps=20, cfg=CFG)
    plain = reconstruct(host, model, lat, pos, empty, steps=20, cfg=CFG)
    err, err_plain = rel_err(out, source_latent()["samples"]), rel_err(plain, source_latent()["samples"])
    print(f"\n[{family}] cfg {CFG}: direct {err:.2e}, plain DDIM {err_plain:.3f}")
    assert err < 1e-5 < err_plain


def test_direct_inversion_corrects_only_the_source_row(host, tiny):
    model, pos, empty, inv, lat = setup(host, tiny, "sd1")
    target = encode(host, tiny("sd1")[1], "a green square on a blue background")
    pair_latent = {"samples": lat["samples"].repeat(2, 1, 1, 1)}
    pair_pos = [[torch.cat([pos[0][0], target[0][0]]), {}]]
    direct = applied(host, model, call(host, "InvertEditDirectInversion", inversion=inv)[0])
    pair = reconstruct(host, direct, pair_latent, pair_pos, empty, steps=20, cfg=CFG)
    alone = reconstruct(host, model, lat, target, empty, steps=20, cfg=CFG)
    assert rel_err(pair[:1], source_latent()["samples"]) < 1e-5
    assert rel_err(pair[1:], alone) < 1e-5   # the target row is the plain edit (batched: float noise)


def test_direct_inversion_needs_the_ddim_step(host, tiny):
    model, pos, empty, inv, lat = setup(host, tiny, "sd1")
    direct = applied(host, model, call(host, "InvertEditDirectInversion", inversion=inv)[0])
    with pytest.raises(ValueError, match="Apply Inversion: a Direct Inversion .* only with the ddim or euler sampler"):
        reconstruct(host, direct, lat, pos, empty, steps=20, cfg=CFG, sampler_name="dpmpp_2m")


@pytest.mark.parametrize("family", FAMILIES)
def test_negative_prompt_inversion_survives_guidance(host, tiny, family):
    model, pos, empty, inv, lat = setup(host, tiny, family)
    npi = call(host, "InvertEditNegativePromptInversion", inversion=inv, positive=pos)[0]
    out = reconstruct(host, applied(host, model, npi), lat, pos, empty, steps=20, cfg=CFG)
    at_cfg1 = reconstruct(host, model, lat, pos, steps=20, cfg=1.0)
    plain = reconstruct(host, model, lat, pos, empty, steps=20, cfg=CFG)
    src = source_latent()["samples"]
    print(f"\n[{family}] cfg {CFG}: negative-prompt {rel_err(out, src):.4f}, plain DDIM {rel_err(plain, src):.4f}, "
          f"cfg 1 {rel_err(at_cfg1, src):.4f}")
    # the guided prediction equals the conditional one the inversion followed: cfg 1's error, whatever the cfg
    assert torch.allclose(out, at_cfg1, rtol=0, atol=1e-4)
    assert rel_err(out, src) < 0.5 * rel_err(plain, src)


def test_negative_prompt_inversion_needs_the_source_prompt(host, tiny):
    model, pos, empty, inv, lat = setup(host, tiny, "sd1", steps=5)
    with pytest.raises(ValueError, match="Negative-Prompt Inversion: input 'positive' is not the source prompt"):
        call(host, "InvertEditNegativePromptInversion", inversion=inv, positive=empty)
    direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
    with pytest.raises(ValueError, match="Negative-Prompt Inversion: input 'inversion' is a direct inversion"):
        call(host, "InvertEditNegativePromptInversion", inversion=direct, positive=pos)


@pytest.mark.parametrize("method", ["InvertEditDirectInversion", "InvertEditNegativePromptInversion"])
def test_saved_method_inversions_reproduce_bit_for_bit(host, tiny, method):
    model, pos, empty, inv, lat = setup(host, tiny, "sdxl", steps=10)
    refined = call(host, method, inversion=inv, **({"positive": pos} if "Negative" in method else {}))[0]
    call(host, "InvertEditSaveInversion", inversion=refined, filename_prefix=f"inversions/{method}")
    listed = host.nodes.NODE_CLASS_MAPPINGS["InvertEditLoadInversion"].define_schema().inputs[0].options
    loaded = call(host, "InvertEditLoadInversion", inversion=[n for n in listed if method in n][-1])[0]
    assert loaded.method == refined.method and loaded.clues.keys() == refined.clues.keys()
    a = reconstruct(host, applied(host, model, refined), lat, pos, empty, steps=10, cfg=CFG)
    b = reconstruct(host, applied(host, model, loaded), lat, pos, empty, steps=10, cfg=CFG)
    assert torch.equal(a, b)
