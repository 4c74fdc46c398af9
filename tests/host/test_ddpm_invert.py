"""Edit-Friendly DDPM Invert + Sampler: exact reconstruction through SamplerCustomAdvanced."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, custom_sample, encode, rel_err

PROMPT = "a red circle on a blue background"


def source_latent(seed=0):
    return {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 5.0}


def ef_invert(host, model, pos, neg, **kw):
    args = dict(steps=25, scheduler="ddim_uniform", start_at_step=9, cfg=3.5, seed=0)
    args.update(kw)
    return call(host, "InvertEditDDPMInvert", model=model, latent=source_latent(), positive=pos, negative=neg, **args)


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_edit_friendly_reconstructs_exactly(host, tiny, family):
    model, clip, _ = tiny(family)
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    inv, lat, sigmas = ef_invert(host, model, pos, neg)
    assert inv.method == "edit-friendly" and inv.clues["ddpm.corrections"].shape[0] == len(sigmas) - 1
    sampler = call(host, "InvertEditDDPMSampler", inversion=inv)[0]
    guarded = call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0]
    out = custom_sample(host, guarded, pos, neg, 3.5, sampler, sigmas, lat)
    err = rel_err(out, source_latent()["samples"])
    # a target prompt at the paper's edit cfg changes the image, the noise maps keep it close
    target = encode(host, clip, "a green square on a yellow background")
    edit = custom_sample(host, model, target, neg, 15.0, sampler, sigmas, lat)
    print(f"\n[{family}] edit-friendly DDPM, {len(sigmas) - 1} steps: reconstruction {err:.2e}, "
          f"edit moved {rel_err(edit, source_latent()['samples']):.3f}")
    assert err < 1e-5
    assert rel_err(edit, source_latent()["samples"]) > 1e-3


def test_seeded_and_refusals(host, tiny):
    model, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    a, b, c = (ef_invert(host, model, pos, neg, steps=10, start_at_step=2, seed=s)[0] for s in (0, 0, 1))
    assert torch.equal(a.clues["ddpm.corrections"], b.clues["ddpm.corrections"])
    assert not torch.equal(a.clues["ddpm.corrections"], c.clues["ddpm.corrections"])
    inv, lat, sigmas = ef_invert(host, model, pos, neg, steps=10, start_at_step=2)
    sampler = call(host, "InvertEditDDPMSampler", inversion=inv)[0]
    with pytest.raises(ValueError, match="Edit-Friendly DDPM Sampler: the run covers steps 2 to 5"):
        custom_sample(host, model, pos, neg, 3.5, sampler, sigmas[:4], lat)
    edict = call(host, "InvertEditEDICTInvert", model=model, latent=source_latent(), positive=pos, negative=neg,
                 steps=10, scheduler="ddim_uniform", start_at_step=2, cfg=3.5, mixing=0.93)[0]
    with pytest.raises(ValueError, match="Edit-Friendly DDPM Sampler: input 'inversion' is a edict inversion"):
        call(host, "InvertEditDDPMSampler", inversion=edict)
    guarded = call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0]
    with pytest.raises(ValueError, match="'edit-friendly' inversions are sampled with the Edit-Friendly DDPM Sampler"):
        custom_sample(host, guarded, pos, neg, 3.5, call(host, "KSamplerSelect", sampler_name="ddpm")[0], sigmas, lat)
