"""On the trained toy model, colour and shape swaps with Direct inversion + Attention Inject keep
more of the source's background than regenerating from the inverted latent with the target
prompt. Structure and edit success are printed, not asserted: on the 60-case benchmark P2P
keeps structure more often (63% vs 45%) but loses shape-edit success (85% vs 100%), which
issue 5 still has open."""
from __future__ import annotations

import statistics

import pytest

from headless.calls import call, encode

STEPS, CFG, CASES = 15, 5.0, 8


@pytest.fixture(scope="module")
def results(host):
    from toyworld import world as W
    from toyworld.judge import judge

    model, clip, vae = host.pack.nodes.toy_model.load_toy_model()
    empty = encode(host, clip, "")
    cases = [c for c in W.edit_cases(60, seed=0) if c.kind in ("colour", "shape")][:CASES]
    out = {"naive": [], "p2p": []}
    for case in cases:
        src_img, src_mask = W.render(case.source)
        _, tgt_mask = W.render(case.target)
        keep = ~(src_mask | tgt_mask)
        latent = call(host, "VAEEncode", pixels=src_img[None], vae=vae)[0]
        src, tgt = encode(host, clip, case.source_caption), encode(host, clip, case.target_caption)
        inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=src, steps=STEPS,
                           scheduler="ddim_uniform", start_at_step=0, cfg=1.0)

        def sample(m, positive, latent_image):
            return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=CFG,
                        sampler_name="ddim", scheduler="ddim_uniform", positive=positive, negative=empty,
                        latent_image=latent_image, start_at_step=0, end_at_step=10000,
                        return_with_leftover_noise="disable")[0]["samples"]

        m, pair, pair_lat = call(host, "InvertEditAttentionInject", model=model, clip=clip, latent=lat,
                                 source_prompt=case.source_caption, target_prompt=case.target_caption, mode="replace",
                                 reweight="", cross_replace=0.8, self_replace=0.4)
        m = call(host, "InvertEditApplyInversion", model=m, inversion=call(host, "InvertEditDirectInversion", inversion=inv)[0])[0]
        edits = {"naive": sample(model, tgt, lat), "p2p": sample(m, pair, pair_lat)[1:]}
        for name, samples in edits.items():
            img = call(host, "VAEDecode", samples={"samples": samples}, vae=vae)[0][0]
            r = judge(img)
            out[name].append({"bg": W.psnr(img, src_img, keep), "structure": r.same_structure(case.target),
                              "success": r.matches(case.target)})
    return out


def test_p2p_keeps_more_background_than_naive_regeneration(results):
    mean = {k: statistics.fmean(x["bg"] for x in v) for k, v in results.items()}
    structure = {k: sum(x["structure"] for x in v) for k, v in results.items()}
    success = {k: sum(x["success"] for x in v) for k, v in results.items()}
    print(f"\n{CASES} colour/shape swaps, {STEPS} steps, cfg {CFG}: background PSNR {mean}, structure kept {structure}, "
          f"edit success {success}")
    assert mean["p2p"] > mean["naive"] + 1.0      # measured +3.1 dB on these 8 cases
