"""Toy World 2's model (issue 12) through the pack's node and the host's stock nodes: two objects
at 512 px (the node's `world` "two objects (512 px)").

Sanity and the claims the README makes of it; the measured gates and the full benchmark live
in ``python -m workshop.benchmarks.toyworld2_gates`` and ``python -m workshop.benchmarks.toyworld2``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import judge

REPO = Path(__file__).resolve().parents[2]
WORLD_2 = "two objects (512 px)"


@pytest.fixture(scope="module")
def toy(host):
    node = host.nodes.NODE_CLASS_MAPPINGS["InvertEditToyModel"]
    return node.execute(world=WORLD_2).result


def test_world_2_is_offered_and_makes_sd15_sized_latents(host, toy):
    model, clip, vae = toy
    schema = host.nodes.NODE_CLASS_MAPPINGS["InvertEditToyModel"].define_schema()
    (world,) = schema.inputs
    assert WORLD_2 in world.options and world.default in world.options and world.tooltip
    img = S.render(S.SAMPLE)[0][None]
    latent = call(host, "VAEEncode", pixels=img, vae=vae)[0]
    assert latent["samples"].shape == (1, 4, 64, 64)   # 8x, as SD1.5 at 512 px
    out = call(host, "VAEDecode", samples=latent, vae=vae)[0]
    assert S.psnr(out[0], img[0]) > 28.0
    assert judge(out[0]).matches_scene(S.SAMPLE)


def test_bundled_two_object_sample_is_the_world_2_sample():
    from PIL import Image
    with Image.open(REPO / "assets" / "sample_two_objects.png") as im:
        got = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    assert got.shape == (512, 512, 3)
    assert judge(got).matches_scene(S.SAMPLE)
    config = json.loads((REPO / "models" / "toyworld2" / "config.json").read_text())
    assert config["sample"]["caption"] == S.SAMPLE.caption


def test_inversion_reconstructs_both_objects(host, toy):
    model, clip, vae = toy
    img = S.render(S.SAMPLE)[0][None]
    latent = call(host, "VAEEncode", pixels=img, vae=vae)[0]
    pos = encode(host, clip, S.SAMPLE.caption)
    _, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=15,
                     scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    out = call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=15, cfg=1.0,
               sampler_name="ddim", scheduler="ddim_uniform", positive=pos, negative=pos, latent_image=lat,
               start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]
    rec = call(host, "VAEDecode", samples=out, vae=vae)[0][0]
    assert judge(rec).matches_scene(S.SAMPLE)
    assert S.psnr(rec, img[0]) > 25.0


def test_benchmark_claims_on_a_subset(host):
    """The README's claims of the world-2 benchmark (``python -m workshop.benchmarks.toyworld2``),
    re-measured on its first six cases (shard 0/5 of the first 30: every edit kind), 10 steps:
    the published ordering (DDIM + Prompt-to-Prompt keeps less background than Direct +
    Prompt-to-Prompt; measured +1.7 dB on the five cases with a background to keep), the
    oracle row (the true changed region into Latent Blend keeps the background as well as the
    reconstruction does), and Direct + Prompt-to-Prompt's whole-case success (edit, other
    object, structure: 3 of these 6 cases; 40% of the first 30)."""
    import argparse
    from statistics import fmean
    from workshop.benchmarks import toyworld2 as B

    args = argparse.Namespace(cases=30, seed=0, shard=(0, 5), steps=10, cfg=5.0,
                              rows="no correction,Direct inversion + P2P (Prompt,oracle")
    result = B.run_cases(host, args)
    names = [name for name, _ in result["rows"]]
    rec, ddim, direct, oracle = (next(n for n in names if key in n) for key in
                                 ("reconstruction", "no correction", "Direct inversion + P2P (Prompt", "oracle"))
    kept = [c for c in result["cases"] if c["kind"] != "background"]
    assert [c["kind"] for c in result["cases"]] == ["colour", "shape", "background", "drop", "colour", "shape"]

    def bg(row):
        return fmean(c["rows"][row]["bg"] for c in kept)

    print(f"bg PSNR vs GT: reconstruction {bg(rec):.1f}, DDIM + P2P {bg(ddim):.1f}, Direct + P2P {bg(direct):.1f}, "
          f"oracle Latent Blend {bg(oracle):.1f} dB")
    assert bg(direct) >= bg(ddim) + 1.0
    assert bg(oracle) >= bg(rec) - 1.0
    assert all(c["rows"][oracle]["iou"] == 1.0 for c in result["cases"])
    assert sum(c["rows"][direct]["case"] for c in result["cases"]) >= 3


def test_world_2_nouns_carry_their_colour(host, toy):
    """The world-2 text encoder is the seeded random CLIP rewritten by
    ``workshop/toyworld/bound_text.bind``: every noun (and "background") carries the latest colour
    word before it, as real CLIP's causal attention lets it. Checked on the shipped weights."""
    from workshop.toyworld import bound_text
    from workshop.toyworld.train_scenes import CLIP_SEED, bind_world
    _, clip, _ = toy
    text = "a red circle and a blue square on a green background"
    a = encode(host, clip, text)[0][0][0]
    b = encode(host, clip, "a blue circle and a red square on a green background")[0][0][0]
    k = bound_text.BLOCK
    own, carried = slice(0, k), slice(k, 2 * k)

    def cos(x, y):
        return float(torch.nn.functional.cosine_similarity(x, y, dim=0))

    # tokens: <bos> a red circle and a blue square on a green background
    for noun, colour in ((3, 2), (7, 6), (11, 10)):
        assert cos(a[noun, carried], a[colour, own]) > 0.999
    assert cos(a[7, carried], a[2, own]) < 0.1                        # the square carries blue, not red
    assert cos(a[3], b[3]) < 0.7 and torch.allclose(a[3, own], b[3, own], atol=1e-4)  # red vs blue circle
    config = json.loads((REPO / "models" / "toyworld2" / "config.json").read_text())
    fresh = host.pack.demo.tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    bind_world(fresh, config["training"]["text_encoder"])
    assert torch.allclose(encode(host, fresh, text)[0][0][0], a, atol=1e-5)


def test_an_identifier_bound_into_world_2_reaches_its_noun_and_changes_no_world_caption(host):
    """``bound_text.bind_identifier`` (DreamBooth's "sks" on world 2, docs/measurements.md "Why world 2's
    model does not learn the subject"): the identifier's channel reaches the words after it, up to the
    next colour word, and every caption of the world is encoded as before (to float rounding)."""
    from workshop.toyworld import bound_text
    from workshop.toyworld import scenes as S
    from workshop.toyworld.train_scenes import CLIP_SEED, world_tokens, token_id
    clip = host.pack.demo.tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    bound_text.bind(clip.cond_stage_model, world_tokens(clip), list(S.COLOURS), seed=CLIP_SEED)   # no identifier yet
    captions = ["a red circle and a blue square on a green background", "a yellow triangle on a black background",
                "a white square and a red triangle on a blue background"]
    before = [encode(host, clip, c)[0][0][0] for c in captions]
    sks = encode(host, clip, "a sks square on a white background")[0][0][0]
    token = token_id(clip, "sks")
    bound_text.bind_identifier(clip.cond_stage_model, token)
    for caption, was in zip(captions, before):   # the layer norm's float mean of a zero-sum row: about 1e-9
        assert float((encode(host, clip, caption)[0][0][0] - was).abs().max()) < 1e-6
    got = encode(host, clip, "a sks square on a white background")[0][0][0]
    channel = bound_text.IDENTIFIER_CHANNEL
    # tokens: <bos> a sks square on a white background
    assert got[3, channel] > 1.0 and got[4, channel] > 1.0        # "square" and "on" carry it
    assert abs(float(got[1, channel])) < 1e-6 and abs(float(got[7, channel])) < 1e-6   # "a" before; after "white"
    assert abs(float(sks[3, channel])) < 1e-6 and not torch.allclose(got[3], sks[3], atol=1e-2)
    with pytest.raises(ValueError, match="not free"):
        bound_text.bind_identifier(clip.cond_stage_model, token, channel=bound_text.BLOCK)


def test_the_shipped_world_2_encoder_carries_the_identifier(host, toy):
    """The shipped world-2 text encoder is ``bind_world(clip, "bound")``, which binds DreamBooth's
    identifier too (``train_scenes.IDENTIFIER``): "sks" reaches the noun after it, so an untouched
    model reads "a sks square" differently from "a red square" and a DreamBooth run can teach it."""
    from workshop.toyworld import bound_text
    from workshop.toyworld.train_scenes import IDENTIFIER_CAPTION
    _, clip, _ = toy
    got = encode(host, clip, IDENTIFIER_CAPTION)[0][0][0]
    plain = encode(host, clip, IDENTIFIER_CAPTION.replace("sks", "red"))[0][0][0]
    channel = bound_text.IDENTIFIER_CHANNEL
    assert got[3, channel] > 1.0 and abs(float(plain[3, channel])) < 1e-6   # "square" after "sks"; after "red"


def test_bound_nouns_encoder_changes_only_the_colour_words_and_their_nouns(host):
    """``--text-encoder bound-nouns`` (tried for DiffEdit, not shipped): only nouns take in a
    colour, so changing one colour word changes that word and its noun; "and", "a", "on", the
    end and padding tokens stay."""
    from workshop.toyworld.train_scenes import CLIP_SEED, bind_world
    clip = host.pack.demo.tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    bind_world(clip, "bound-nouns")
    a = encode(host, clip, "a red circle and a blue square on a green background")[0][0][0]
    b = encode(host, clip, "a yellow circle and a black square on a green background")[0][0][0]
    changed = [i for i in range(77) if not torch.allclose(a[i], b[i], atol=1e-3)]
    assert changed == [2, 3, 6, 7]


def test_train_scenes_starts_resumes_and_warm_starts(host, tmp_path):
    """``python -m workshop.toyworld.train_scenes --stage unet`` in miniature: 2 steps of batch 2
    on 64-px scenes with the small ``L32-a4`` preset and the shipped VAE. A fresh start (no
    ``--init-from``); a run stopped after step 1 and started again, which must land on the
    uninterrupted run's weights (data and noise are drawn per step); and ``--init-from`` that run
    with ``--attention-loss``, which must start from its weights."""
    import shutil
    from safetensors.torch import load_file
    from workshop.toyworld import train_scenes as T

    def args(out: Path, *extra: str):
        out.mkdir(exist_ok=True)
        shutil.copy(REPO / "models" / "toyworld2" / "toy_vae.safetensors", out)
        return T.parse_args(["--stage", "unet", "--out", str(out), "--preset", "L32-a4", "--text-encoder", "bound",
                             "--unet-steps", "2", "--unet-batch", "2", "--lowres", "64", "--lowres-steps", "2",
                             "--highres-every", "0", "--warmup", "1", "--threads", str(torch.get_num_threads()),
                             *extra])

    whole = tmp_path / "whole"
    assert T.train_unet(args(whole)) is True
    start = torch.load(whole / T.START_FILE, weights_only=False)
    trained = load_file(str(whole / "toy_unet.safetensors"))
    assert any(not torch.equal(trained[k], start["init"][k].half()) for k in trained)

    halves = tmp_path / "halves"
    halves.mkdir()
    shutil.copy(whole / T.START_FILE, halves)   # the same start, without rebuilding it
    assert T.train_unet(args(halves, "--stop-after", "1")) is False
    assert torch.load(halves / "unet_ckpt.pt", weights_only=False)["step"] == 1
    assert T.train_unet(args(halves)) is True
    resumed = load_file(str(halves / "toy_unet.safetensors"))
    assert all(torch.equal(resumed[k], trained[k]) for k in trained)

    warm = tmp_path / "warm"
    warm.mkdir()
    shutil.copy(whole / T.START_FILE, warm)
    a = args(warm, "--init-from", str(whole), "--attention-loss", "0.02", "--stop-after", "1")
    unet = T.unet_from_config(start["unet_config"], torch.device("cpu"))
    T.warm_start(unet, whole)
    assert all(torch.equal(v, trained[k].float()) for k, v in unet.state_dict().items())
    assert T.train_unet(a) is False
    moved = torch.load(warm / "unet_ckpt.pt", weights_only=False)["model"]
    assert all(torch.isfinite(v).all() for v in moved.values())
    assert any(not torch.equal(moved[k], trained[k].float()) for k in trained)
    assert max((moved[k] - trained[k].float()).abs().max() for k in trained) < 0.05   # one small step from it
