"""Issue 5 on the trained toy model: colour and shape swaps with Direct inversion + Attention
Inject (Prompt-to-Prompt replace) keep more background and more structure than regenerating
from the inverted latent with the target prompt, at no loss of edit success.

The settings are the toy benchmark's tuned P2P row (cross_replace 0.1, self_replace 0.8, cfg 5),
chosen by ``workshop/benchmarks/p2p_sweep.py`` over the 40 colour/shape swaps of ``edit_cases(60, seed=0)``
at 15 steps, and checked on 40 held-out swaps (``--pool 120 --skip 40``) and at 50 steps:

    40 benchmark swaps, 15 steps   naive: bg 22.38 dB, structure 18/40, success colour 20/20, shape 20/20
                                   P2P:   bg 25.61 dB, structure 27/40, success colour 20/20, shape 20/20
    40 held-out swaps, 15 steps    naive: bg 21.72 dB, structure 17/40, success colour 20/20, shape 19/20
                                   P2P:   bg 26.35 dB, structure 31/40, success colour 20/20, shape 20/20
    40 benchmark swaps, 50 steps   naive: bg 20.70 dB, structure 14/40, success colour 20/20, shape 20/20
                                   P2P:   bg 25.93 dB, structure 25/40, success colour 20/20, shape 20/20

The paper's defaults (cross 0.8, self 0.4) keep background and structure too but, at 15 steps,
lose shape swaps (17/20 and 11/20; 20/20 at 50 steps). In the 15-step sweep shape success falls
as more steps take the source's cross-attention maps (cross 1: 6-7/20) or self-attention maps
(self 1: 13-16/20). This test runs the first 20 of the benchmark swaps (10 colour, 10 shape)
at 15 steps."""
from __future__ import annotations

import statistics

import pytest

from workshop.headless.calls import call, encode

STEPS, CFG, CASES = 15, 5.0, 20
CROSS, SELF = 0.1, 0.8   # the benchmark's tuned P2P row (the node's defaults are the paper's 0.8, 0.4)


@pytest.fixture(scope="module")
def results(host):
    from workshop.toyworld import world as W
    from workshop.toyworld.judge import judge

    model, clip, vae = host.pack.demo.toy_model.load_toy_model("one object (128 px)")
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
                                 reweight="", cross_replace=CROSS, self_replace=SELF, local_blend=False)
        m = call(host, "InvertEditApplyInversion", model=m, inversion=call(host, "InvertEditDirectInversion", inversion=inv)[0])[0]
        edits = {"naive": sample(model, tgt, lat), "p2p": sample(m, pair, pair_lat)[1:]}
        for name, samples in edits.items():
            img = call(host, "VAEDecode", samples={"samples": samples}, vae=vae)[0][0]
            r = judge(img)
            out[name].append({"kind": case.kind, "bg": W.psnr(img, src_img, keep),
                              "structure": r.same_structure(case.target), "success": r.matches(case.target)})
    return out


def test_p2p_keeps_background_and_structure_at_no_loss_of_edit_success(results):
    mean = {k: statistics.fmean(x["bg"] for x in v) for k, v in results.items()}
    structure = {k: sum(x["structure"] for x in v) for k, v in results.items()}
    success = {k: {kind: sum(x["success"] for x in v if x["kind"] == kind) for kind in ("colour", "shape")}
               for k, v in results.items()}
    print(f"\n{CASES} colour/shape swaps, {STEPS} steps, cfg {CFG}, P2P cross {CROSS} self {SELF}: "
          f"background PSNR {mean}, structure kept {structure}, edit success {success}")
    # Measured on these 20 cases: bg 26.03 vs 22.13 dB, structure 14 vs 10, success colour 10 vs
    # 10 and shape 10 vs 10 (P2P vs naive). The paper's defaults give shape 8 of 10 here.
    assert mean["p2p"] > mean["naive"] + 2.0
    assert structure["p2p"] >= structure["naive"] + 2
    for kind in ("colour", "shape"):
        assert success["p2p"][kind] >= success["naive"][kind], kind
